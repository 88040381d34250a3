"""How django-axes' lockout looks to a person: a 429 with Retry-After, in the error shape under /api/ and
as a page elsewhere (the admin's and the portal's login forms), never Django's bare 403.

Every attempt while locked out (the right password included) counts as one more failure and starts the
cool-off again (axes' AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the whole cool-off is exactly
how long to wait after this answer.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .api.exceptions import error_body, is_api

LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts for this account or from this address: sign-in is paused. "
    "Try again later, or ask an administrator to unlock the account."
)


def retry_after_seconds(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE."""
    wait = retry_after_seconds(request)
    response: HttpResponse
    if is_api(request):
        response = JsonResponse(error_body("locked_out", LOCKED_OUT_MESSAGE), status=429)
    else:
        context = {"message": LOCKED_OUT_MESSAGE, "minutes": math.ceil(wait / 60)}
        response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response
