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


RECORD_VITALS = (*VITAL_FIELDS, "vitals_not_taken_reason")
RECORD_NOTES = tuple(name for name in NOTE_FIELDS if name != "vitals_not_taken_reason")


class RecordForm(_ModelFieldsForm):
    """The panel's one form: vitals (or why they were not taken) and notes, with the version they were
    loaded at. Autosaved as a draft and sent whole with the completion (views.panel_save, panel_complete)."""

    field_names = (*RECORD_VITALS, *RECORD_NOTES)

    def __init__(self, *args: Any, instance=None, **kwargs: Any):
        super().__init__(*args, instance=instance, **kwargs)
        self.fields["follow_up_date"].widget = forms.DateInput(attrs={"type": "date"})
        self.fields["vitals_not_taken_reason"].widget.attrs["rows"] = 2
        self.fields["version"] = forms.IntegerField(
            widget=forms.HiddenInput, required=False, min_value=1, max_value=2**31 - 1
        )
        if instance is not None and not self.is_bound:
            self.initial["version"] = instance.version

    def vitals_fields(self) -> list:
        return [self[name] for name in RECORD_VITALS]

    def notes_fields(self) -> list:
        return [self[name] for name in RECORD_NOTES]

    def values(self) -> tuple[int | None, dict[str, Any]]:
        """(the version it was loaded at, the record's values) from a valid form."""
        data = dict(self.cleaned_data)
        return data.pop("version", None), data


class PrescriptionLineForm(_ModelFieldsForm):
    model = PrescriptionItem
    field_names = ITEM_FIELDS
    prefix = "line"  # inside the record's one form: its names never meet the record's

    @classmethod
    def started_in(cls, data: Any) -> bool:
        """Whether a line was begun in `data` (the route always has a value: it does not count)."""
        return any(
            str(data.get(f"{cls.prefix}-{name}", "")).strip() for name in ITEM_FIELDS if name != "route"
        )

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
