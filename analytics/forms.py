"""The analytics page's filters: choices come from what the user may see."""

from __future__ import annotations

from django import forms

from opd.core.models import Role, User
from opd.core.tenancy import clinics_for, departments_for
from scheduling.selectors import doctors_for


class StatsFilterForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    clinic = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="None chosen: every clinic you work at."
    )
    department = forms.ModelChoiceField(queryset=None, required=False)
    doctor = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics_for(user).order_by("name")
        self.fields["department"].queryset = departments_for(user).order_by("clinic__name", "name")
        if user.role == Role.DOCTOR and not user.is_superuser:
            del self.fields["doctor"]  # doctors see their own figures only
        else:
            self.fields["doctor"].queryset = doctors_for(user).select_related("user")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date_from") and cleaned.get("date_to") and cleaned["date_from"] > cleaned["date_to"]:
            self.add_error("date_from", "Must be on or before the end date.")
        return cleaned

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "clinic_ids": [c.pk for c in data.get("clinic") or []] or None,
            "department_id": data["department"].pk if data.get("department") else None,
            "doctor_id": data["doctor"].pk if data.get("doctor") else None,
        }
