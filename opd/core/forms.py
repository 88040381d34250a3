"""Django's own account forms (password change, password reset), saving through user_set_password so the
change is audited like every other write of a user."""

from __future__ import annotations

from typing import Any

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
