"""Portal forms: they check the shape of the input; the services decide everything else.

Write forms carry a hidden `token` (a UUID made when the form is rendered). The view uses it as an
idempotency key, so a double-submitted form has one effect and both submits land on the same page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.db.models import QuerySet

from notifications.models import PreferredChannel
from opd.core.errors import DomainError
from opd.core.forms import model_choice_field
from opd.core.models import Clinic, Department, User
from opd.core.tenancy import clinics_for, departments_for
from patients.models import Sex
from scheduling.models import Doctor, Slot
from scheduling.selectors import doctors_for


class ParentSelect(forms.Select):
    """A select whose options name their parent(s) in `data-parent`, so portal.js can narrow the
    department list to the chosen clinic and the doctor list to the chosen department."""

    def __init__(self, *args, parent: Callable[[Any], str], **kwargs):
        self.parent = parent
        super().__init__(*args, **kwargs)

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-parent"] = self.parent(instance)
        return option


class TokenForm(forms.Form):
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("token", uuid.uuid4())

    def clean_token(self):
        return str(self.cleaned_data["token"])

    def _post_clean(self):
        super()._post_clean()
        if "token" in self.errors:
            # Hidden, so the patient cannot fix it: say what to do and render a fresh one.
            del self.errors["token"]
            self.add_error(None, "This form has expired; please check the details and submit it again.")
            self.data = self.data.copy()
            self.data["token"] = str(uuid.uuid4())


def add_domain_error(
    form: forms.Form, error: DomainError, field_names: Mapping[str, str] | None = None
) -> None:
    """Show a service's refusal on the form: beside the field it names, else above the form."""
    field_names = field_names or {}
    placed = False
    for name, messages in error.fields.items():
        target = field_names.get(name, name)
        if target in form.fields and not form.fields[target].widget.is_hidden:
            for message in messages:
                form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


class SignupForm(forms.Form):
    first_name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    date_of_birth = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
    )
    sex = forms.ChoiceField(choices=Sex.choices, initial=Sex.UNKNOWN, required=False)
    email = forms.EmailField(
        label="Email address",
        max_length=150,
        help_text="You will log in with it, and we send appointment messages to it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label="Mobile phone",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters; not only numbers, not a common password, not like your name.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    # The service's field names, where they differ from the form's.
    SERVICE_FIELDS = {"password": "password1"}

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ; type the same password twice.")
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "email": data["email"],
            "password": data["password1"],
            "first_name": data["first_name"],
            "last_name": data["last_name"],
            "date_of_birth": data["date_of_birth"],
            "phone": data["phone"],
            "sex": data["sex"] or Sex.UNKNOWN,
        }


class FindForm(forms.Form):
    """Clinic -> department -> doctor (or the first available). Every choice is scoped to the user."""

    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), empty_label="Choose a clinic")
    department = forms.ModelChoiceField(
        queryset=Department.objects.none(),
        empty_label="Choose a department",
        widget=ParentSelect(parent=lambda d: str(d.clinic_id)),
    )
    doctor = forms.ModelChoiceField(
        queryset=Doctor.objects.none(),
        required=False,
        empty_label="Any doctor (first available)",
        widget=ParentSelect(parent=lambda d: " ".join(str(dep.pk) for dep in d.departments.all())),
    )
    day = forms.DateField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        clinics = clinics_for(user).filter(is_active=True)
        model_choice_field(self, "clinic").queryset = clinics
        departments = departments_for(user).filter(is_active=True, clinic__in=clinics)
        department_field = model_choice_field(self, "department")
        department_field.queryset = departments
        # portal.js narrows the list to the chosen clinic; without it, each option names its clinic.
        several = clinics.count() > 1
        # Django's way to label one field's options; the checker only knows the method it replaces.
        department_field.label_from_instance = lambda d: (  # type: ignore[method-assign,assignment]
            f"{d.name} ({d.clinic.name})" if several else d.name
        )
        doctor_field = model_choice_field(self, "doctor")
        doctor_field.queryset = (
            doctors_for(user).select_related("user").prefetch_related("departments").distinct()
        )
        doctor_field.label_from_instance = lambda d: f"{d.display_name} ({d.specialization})"  # type: ignore[method-assign,assignment]

    def clean(self):
        data = super().clean()
        clinic, department, doctor = data.get("clinic"), data.get("department"), data.get("doctor")
        if clinic and department and department.clinic_id != clinic.pk:
            self.add_error(
                "department",
                f"{department.name} is at {department.clinic.name}; choose one at {clinic.name}.",
            )
        elif department and doctor and not doctor.departments.filter(pk=department.pk).exists():
            self.add_error("doctor", f"{doctor.display_name} does not work in {department.name}.")
        return data


class BookForm(TokenForm):
    reason = forms.CharField(
        label="Reason for the visit",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="A few words for the doctor, for example “cough for two weeks”.",
        error_messages={"required": "Tell the doctor briefly why you are coming."},
    )


class CancelForm(TokenForm):
    reason = forms.CharField(
        label="Reason for cancelling (optional)",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RescheduleForm(TokenForm):
    slot = forms.ModelChoiceField(
        label="New time",
        queryset=Slot.objects.none(),
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a new time.",
            "invalid_choice": "That time is not open any more; choose another.",
        },
    )

    def __init__(self, *args, slots: QuerySet[Slot], **kwargs):
        super().__init__(*args, **kwargs)
        model_choice_field(self, "slot").queryset = slots


class ProfileForm(forms.Form):
    """Contact details the patient keeps up to date themselves (identity changes go through the clinic)."""

    phone = forms.CharField(
        label="Mobile phone",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    email = forms.EmailField(
        label="Contact email",
        required=False,
        help_text="Where we send appointment messages. Your sign-in stays the same.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    address = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"})
    )
    emergency_contact_name = forms.CharField(label="Emergency contact", max_length=200, required=False)
    emergency_contact_phone = forms.CharField(
        label="Emergency contact's phone",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel"}),
    )


class PreferencesForm(forms.Form):
    """How the patient wants to hear about their appointments (notifications' ContactPreference)."""

    email_enabled = forms.BooleanField(label="Email", required=False)
    sms_enabled = forms.BooleanField(label="Text message (SMS)", required=False)
    in_app_enabled = forms.BooleanField(label="Messages in this portal", required=False)
    preferred_channel = forms.ChoiceField(
        label="If I can be reached several ways",
        choices=[
            (PreferredChannel.ALL, "Send email and text message"),
            (PreferredChannel.EMAIL, "Email only"),
            (PreferredChannel.SMS, "Text message only"),
        ],
        required=False,
    )
