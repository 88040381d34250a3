from __future__ import annotations

import django_filters

from opd.core.api.views import IdFilter

from .models import ApprovalStatus, Doctor


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
