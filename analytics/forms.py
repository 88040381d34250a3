"""The analytics page's filters: choices come from what the user may see."""

from __future__ import annotations

from django import forms

from opd.core.forms import model_choice_field
from opd.core.models import Clinic, Department, Role, User
from opd.core.tenancy import clinics_for, departments_for
from scheduling.models import Doctor
from scheduling.selectors import doctors_for


class StatsFilterForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    # Each queryset is the user's, set in __init__.
    clinic: forms.ModelMultipleChoiceField[Clinic] = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="None chosen: every clinic you work at."
    )
    department: forms.ModelChoiceField[Department] = forms.ModelChoiceField(queryset=None, required=False)
    doctor: forms.ModelChoiceField[Doctor] = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        model_choice_field(self, "clinic").queryset = clinics_for(user).order_by("name")
        model_choice_field(self, "department").queryset = departments_for(user).order_by(
            "clinic__name", "name"
        )
        if user.role == Role.DOCTOR and not user.is_superuser:
            del self.fields["doctor"]  # doctors see their own figures only
        else:
            model_choice_field(self, "doctor").queryset = doctors_for(user).select_related("user")

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
