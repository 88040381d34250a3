"""Sign-in protection for the API's token endpoint, as a mixin so the view's own body stays its own.

django-axes refuses `authenticate()` for a locked-out account or address, and marks the request it was
given. DRF hands `authenticate()` its own Request, so axes' middleware (which looks at Django's request)
never sees the mark: this mixin turns it into the 429 `locked_out` answer with Retry-After.

A token handed out is a sign-in: the view sends Django's `user_logged_in` for it, so axes starts the
failure count again (AXES_RESET_ON_SUCCESS) and `last_login` moves, as on the login page.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
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

    def handle_exception(self, exc: Exception) -> Response:
        if is_locked_out(self.request) and not isinstance(exc, exceptions.Throttled):
            exc = LockedOut(wait=retry_after_seconds(self.request))
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Any:
        # Whatever the view answered, a locked-out request gets no token.
        if is_locked_out(request) and response.status_code != 429:
            response = self.handle_exception(LockedOut(wait=retry_after_seconds(request)))
        return super().finalize_response(request, response, *args, **kwargs)
