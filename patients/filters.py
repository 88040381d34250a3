from __future__ import annotations

import django_filters

from .models import Patient, PatientStatus
from .selectors import patient_search


class PatientFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        label="Name prefix (each word), phone number (its last 7 digits or all), insurance policy number or MRN",
    )
    status = django_filters.ChoiceFilter(choices=PatientStatus.choices)

    class Meta:
        model = Patient
        fields = ["search", "status"]

    def filter_search(self, queryset, name, value):
        return patient_search(queryset, value)
