"""Forms of the consultation panel. They check the shape of the input (types, plausible ranges, choices)
with the model's own fields and validators; the services hold the rules, and their errors are put
beside the fields (opd.core.admin_mixins.attach_domain_error)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.forms.models import fields_for_model, model_to_dict

from .models import NOTE_FIELDS, VITAL_FIELDS, Consultation, PrescriptionItem, TriageObservation
from .services import ITEM_FIELDS


class _ModelFieldsForm(forms.Form):
    """A plain form with some of a model's fields. Unlike a ModelForm it never touches an instance."""

    model: type = Consultation
    field_names: tuple[str, ...] = ()

    def __init__(self, *args: Any, instance=None, **kwargs: Any):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = model_to_dict(instance, fields=self.field_names)
        super().__init__(*args, **kwargs)
        self.fields.update(fields_for_model(self.model, fields=self.field_names))
        for field in self.fields.values():
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs["rows"] = 3


class VitalsForm(_ModelFieldsForm):
    field_names = VITAL_FIELDS


class TriageVitalsForm(_ModelFieldsForm):
    """The triage page's vitals of one waiting patient (the same readings and validators)."""

    model = TriageObservation
    field_names = VITAL_FIELDS


class NotesForm(_ModelFieldsForm):
    field_names = NOTE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["follow_up_date"].widget = forms.DateInput(attrs={"type": "date"})


class PrescriptionLineForm(_ModelFieldsForm):
    model = PrescriptionItem
    field_names = ITEM_FIELDS

    def __init__(self, *args: Any, allergy_check: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if allergy_check:  # the patient has active allergies: the override is one field away
            self.fields["allergy_override_reason"] = forms.CharField(
                label="Allergy override reason",
                required=False,
                max_length=1000,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Only to prescribe a medicine that matches a recorded allergy. Recorded.",
            )


class BreakGlassForm(forms.Form):
    """Why a doctor opens the record of a patient they have no care relationship with."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text="For example: covering for a colleague, a call from the emergency department. "
        "Logged with your name and reviewed by the organization.",
    )
    next = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_reason(self) -> str:
        reason = " ".join(self.cleaned_data["reason"].split())
        minimum = settings.OPD_BREAK_GLASS_REASON_MIN_LENGTH
        if len(reason) < minimum:
            raise forms.ValidationError(f"At least {minimum} characters.")
        return reason
