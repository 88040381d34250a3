"""Query filters of the clinical-record lists. Bad values answer 400 naming the parameter."""

from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import QuerySet

from opd.core.filters import DayFilter, IdFilter, StrictBooleanFilter

from .models import (
    CareCategory,
    CareNote,
    Consultation,
    ConsultationStatus,
    News2Band,
    Prescription,
    RecordType,
    Result,
)


class ConsultationFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id", label="Patient id")
    doctor = IdFilter(field_name="doctor_id", label="Doctor id")
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")
    appointment = IdFilter(field_name="appointment_id", label="Appointment id")
    status = django_filters.ChoiceFilter(choices=ConsultationStatus.choices)
    news2_band = django_filters.ChoiceFilter(choices=News2Band.choices, label="NEWS2 clinical risk band")

    class Meta:
        model = Consultation
        fields = ["patient", "doctor", "clinic", "appointment", "status", "news2_band"]


class PrescriptionFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id", label="Patient id")
    consultation = IdFilter(field_name="consultation_id", label="Consultation id")
    doctor = IdFilter(field_name="doctor_id", label="Doctor id")

    class Meta:
        model = Prescription
        fields = ["patient", "consultation", "doctor"]


class ResultFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id", label="Patient id")
    consultation = IdFilter(field_name="consultation_id", label="Consultation id")
    record_type = django_filters.ChoiceFilter(choices=RecordType.choices)
    abnormal = StrictBooleanFilter(field_name="is_abnormal", label="true: outside the reference range")

    class Meta:
        model = Result
        fields = ["patient", "consultation", "record_type", "abnormal"]


class CareNoteFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id", label="Patient id")
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")
    category = django_filters.ChoiceFilter(choices=CareCategory.choices)
    date_from = DayFilter(method="filter_date_from", label="From this day (clinic local), inclusive")
    date_to = DayFilter(method="filter_date_to", label="Up to this day (clinic local), inclusive")

    class Meta:
        model = CareNote
        fields = ["patient", "clinic", "category", "date_from", "date_to"]

    # `date` is the clinic-local day. The extra created_at bound (a day wider than any time zone's
    # offset) lets the (organization, clinic, created_at) index narrow the rows first.
    def filter_date_from(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        bound = dt.datetime.combine(value - dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        return queryset.filter(date__gte=value, created_at__gte=bound)

    def filter_date_to(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        bound = dt.datetime.combine(value + dt.timedelta(days=2), dt.time.min, tzinfo=dt.UTC)
        return queryset.filter(date__lte=value, created_at__lt=bound)
