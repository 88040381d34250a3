"""The API's throttles for pages: sign-up, password reset, login and the portal's booking forms.

`rate_limited("signup", subject="email")` wraps a view; a write over the limit answers a 429 page with
Retry-After and the view does not run. Counters are the API's (opd.core.api.throttling), in the cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .api.throttling import SCOPED_THROTTLES

THROTTLED_MESSAGE = "There have been too many attempts at this from your account or your network."


class _Door:
    """What the throttles ask of a view: its scope, and whose account a form names."""

    action = None

    def __init__(self, scope: str, subject: str | None) -> None:
        self.throttle_scope = scope
        self._subject = subject

    def throttle_subject(self, request: HttpRequest) -> str | None:
        return request.POST.get(self._subject) if self._subject else None


def throttled_response(request: HttpRequest, wait: float | None) -> HttpResponse:
    seconds = max(1, math.ceil(wait or 1))
    context = {"message": THROTTLED_MESSAGE, "minutes": math.ceil(seconds / 60)}
    response = render(request, "registration/throttled.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def check_rate(request: HttpRequest, scope: str, subject: str | None = None) -> HttpResponse | None:
    """None when the request may go on; the 429 page otherwise."""
    door = _Door(scope, subject)
    waits = []
    for throttle_class in SCOPED_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, door):
            waits.append(throttle.wait())
    if waits:
        return throttled_response(request, max(w or 0 for w in waits))
    return None


def rate_limited(scope: str, *, subject: str | None = None) -> Callable[..., Any]:
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = check_rate(request, scope, subject)
            return refused if refused is not None else view(request, *args, **kwargs)

        return wrapped

    return decorate
