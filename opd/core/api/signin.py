"""Sign-in protection for the API's token endpoint, as a mixin so the view's own body stays its own.

django-axes refuses `authenticate()` for a locked-out account or address, and marks the request it was
given. DRF hands `authenticate()` its own Request, so axes' middleware (which looks at Django's request)
never sees the mark: this mixin turns it into the 429 `locked_out` answer with Retry-After.

A token handed out is a sign-in: the mixin sends Django's `user_logged_in` for it (the user from the
view's serializer, `validated_data["user"]`), so axes starts the failure count again (AXES_RESET_ON_SUCCESS)
and `last_login` moves, as on the login page. A view that sends the signal itself says
`sends_user_logged_in = True`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..signin import LOCKED_OUT_MESSAGE, retry_after_seconds
from .throttling import SCOPED_THROTTLES


class LockedOut(exceptions.Throttled):
    """A Throttled, so DRF's handler sets Retry-After; its own code tells clients it is the account."""

    default_code = "locked_out"

    def __init__(self, wait: int) -> None:
        super().__init__(wait=wait, detail=LOCKED_OUT_MESSAGE, code="locked_out")


def is_locked_out(request: Request) -> bool:
    return bool(
        getattr(request, "axes_locked_out", False)
        or getattr(getattr(request, "_request", None), "axes_locked_out", False)
    )


class SignInProtectionMixin(APIView):
    """Throttled per address (the `signin_ip` rate); a lockout answers 429 `locked_out`."""

    throttle_scope = "signin"
    throttle_classes = SCOPED_THROTTLES
    sends_user_logged_in = False
    _sign_in_serializer: Any = None

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)  # type: ignore[misc]
        self._sign_in_serializer = serializer
        return serializer

    def handle_exception(self, exc: Exception) -> Response:
        if is_locked_out(self.request) and not isinstance(exc, exceptions.Throttled):
            exc = LockedOut(wait=retry_after_seconds(self.request))
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Any:
        # Whatever the view answered, a locked-out request gets no token.
        if is_locked_out(request) and response.status_code != 429:
            response = self.handle_exception(LockedOut(wait=retry_after_seconds(request)))
        elif status.is_success(response.status_code) and not self.sends_user_logged_in:
            # `_validated_data`: an OPTIONS answer builds the serializer without validating it, and
            # `validated_data` then raises (an AssertionError, which getattr does not catch).
            validated = getattr(self._sign_in_serializer, "_validated_data", None) or {}
            if isinstance(validated, dict) and validated.get("user") is not None:
                user_logged_in.send(
                    sender=validated["user"].__class__, request=request, user=validated["user"]
                )
        return super().finalize_response(request, response, *args, **kwargs)
