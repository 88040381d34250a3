"""Django's and django-axes' sign-in signals, turned into audit events (opd.core.services.signins).

Connected in CoreConfig.ready(). A signal handler only translates: the service writes."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .services.signins import signin_failed, signin_locked_out, signin_succeeded, signout_recorded

# Set by SessionLifetimeMiddleware on the request before it signs an idle or old session out.
EXPIRED_FLAG = "_opd_session_expired"


def _method(request: Any) -> str:
    path = getattr(request, "path", "") or ""
    return "token" if path.startswith("/api/") and "auth/token" in path else "session"


@receiver(user_logged_in, dispatch_uid="opd.core.receivers.signed_in")
def on_signed_in(sender: object, request: Any = None, user: Any = None, **kwargs: object) -> None:
    # Only sign-ins over HTTP: login() called by code with no real request (a shell, the test client's
    # force_login) is no door anyone outside can use, and has no address to record.
    if user is not None and user.pk and getattr(request, "path", ""):
        signin_succeeded(user=user, method=_method(request))


@receiver(user_login_failed, dispatch_uid="opd.core.receivers.signin_failed")
def on_signin_failed(
    sender: object, credentials: dict[str, Any], request: Any = None, **kwargs: object
) -> None:
    # Django has already replaced the password in `credentials` with stars; only the name is kept.
    signin_failed(username=credentials.get("username"), method=_method(request))


@receiver(user_locked_out, dispatch_uid="opd.core.receivers.locked_out")
def on_locked_out(sender: object, request: Any = None, username: Any = None, **kwargs: object) -> None:
    signin_locked_out(username=username, method=_method(request))


@receiver(user_logged_out, dispatch_uid="opd.core.receivers.signed_out")
def on_signed_out(sender: object, request: Any = None, user: Any = None, **kwargs: object) -> None:
    if user is not None and user.pk:
        signout_recorded(user=user, reason="expired" if getattr(request, EXPIRED_FLAG, False) else "logout")
