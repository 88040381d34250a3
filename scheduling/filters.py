"""Query filters of the slot and appointment lists. Bad values answer 400 naming the parameter."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils import timezone

from opd.core.filters import IdFilter, StrictBooleanFilter

from .models import Appointment, AppointmentStatus, ApprovalStatus, Doctor, Slot
from .selectors import bookable_slot_q


class SlotFilter(django_filters.FilterSet):
    doctor = IdFilter(field_name="doctor_id", label="Doctor id")
    department = IdFilter(field_name="department_id", label="Department id")
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")
    date_from = django_filters.DateFilter(
        field_name="date", lookup_expr="gte", label="From this day (clinic local), inclusive"
    )
    date_to = django_filters.DateFilter(
        field_name="date", lookup_expr="lte", label="Up to this day (clinic local), inclusive"
    )
    available = StrictBooleanFilter(
        method="filter_available",
        label="true: only bookable slots (active, future, a seat left, doctor approved); false: the others",
    )

    class Meta:
        model = Slot
        fields = ["doctor", "department", "clinic", "date_from", "date_to", "available"]

    def filter_available(self, queryset: QuerySet[Slot], name: str, value: bool) -> QuerySet[Slot]:
        if value is None:
            return queryset
        condition = bookable_slot_q(timezone.now())
        return queryset.filter(condition) if value else queryset.exclude(condition)


class AppointmentFilter(django_filters.FilterSet):
    slot = IdFilter(field_name="slot_id", label="Slot id")
    patient = IdFilter(field_name="patient_id", label="Patient id")
    doctor = IdFilter(field_name="doctor_id", label="Doctor id")
    status = django_filters.ChoiceFilter(choices=AppointmentStatus.choices)
    # Appointments carry UTC times only; their slot knows the day in the clinic's time zone.
    date = django_filters.DateFilter(field_name="slot__date", label="Day of the appointment (clinic local)")

    class Meta:
        model = Appointment
        fields = ["slot", "patient", "doctor", "status", "date"]


def _doctor_ids_in(**lookup):
    """Doctor ids with a department matching `lookup`: a subquery, so the list needs no DISTINCT."""
    return Doctor.departments.through.objects.filter(**lookup).values("doctor_id")


class DoctorFilter(django_filters.FilterSet):
    department = IdFilter(method="filter_department", label="Department id")
    clinic = IdFilter(method="filter_clinic", label="Clinic id")
    approval_status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)

    class Meta:
        model = Doctor
        fields = ["department", "clinic", "approval_status"]

    def filter_department(self, queryset, name, value):
        return queryset.filter(pk__in=_doctor_ids_in(department_id=value))

    def filter_clinic(self, queryset, name, value):
        return queryset.filter(pk__in=_doctor_ids_in(department__clinic_id=value))
