"""Forms of the safety-data page (patients/views.py): they check the input's shape; the services hold
the rules and write."""

from __future__ import annotations

from django import forms

from .models import Allergy, Medication, Problem
from .services import normalize_icd10

DATE = forms.DateInput(attrs={"type": "date"})


class AllergyForm(forms.ModelForm):
    class Meta:
        model = Allergy
        fields = ("substance", "category", "severity", "reaction", "status")
        widgets = {"reaction": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"substance": "A medicine, an ingredient or a class (penicillins), a food or other."}


class ProblemForm(forms.ModelForm):
    # Without the model's validator: the code is normalized first (clean_icd10_code).
    icd10_code = forms.CharField(
        label="ICD-10 code", max_length=12, required=False, help_text="Optional, for example E11.9 or I10."
    )

    class Meta:
        model = Problem
        fields = ("description", "icd10_code", "status", "onset_date", "resolved_date")
        widgets = {"onset_date": DATE, "resolved_date": DATE}

    def clean_icd10_code(self) -> str:
        # Normalized before the model checks its shape, as the service does: "e119" is E11.9.
        return normalize_icd10(self.cleaned_data.get("icd10_code") or "")


class MedicationForm(forms.ModelForm):
    class Meta:
        model = Medication
        fields = ("name", "dose", "frequency", "status", "started_on", "stopped_on")
        widgets = {"started_on": DATE, "stopped_on": DATE}
        help_texts = {"dose": "For example 500 mg.", "frequency": "For example twice daily."}
