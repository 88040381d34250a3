"""Django's own account forms (password change, password reset), saving through user_set_password so the
change is audited like every other write of a user."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm

from .models import User
from .services import user_set_password


class ServiceSetPasswordForm(SetPasswordForm):
    """The reset link's form: the person sets their own password."""

    def save(self, commit: bool = True) -> Any:
        saved: User = user_set_password(
            actor=self.user, user=self.user, password=self.cleaned_data["new_password1"]
        )
        self.user = saved
        return saved


class ServicePasswordChangeForm(PasswordChangeForm, ServiceSetPasswordForm):
    pass


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """`form.fields[name]` as the model choice field it is, for a form's __init__ to scope its queryset
    to the user: `fields` holds plain `Field`s as far as the checker knows."""
    field = form.fields[name]
    if not isinstance(field, forms.ModelChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a model choice field.")
    return field
