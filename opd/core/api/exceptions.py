"""One error shape for every API answer: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from opd.core.db import is_database_unreachable
from opd.core.errors import DomainError
from opd.core.observability import count_conflict

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
SERVER_ERROR_MESSAGE = "The server failed to answer this request; it has been logged."
UNAVAILABLE_MESSAGE = "The service is briefly unavailable; try again in a few seconds."
# Seconds a client waits before retrying while the database is unreachable (a restart takes about that).
UNAVAILABLE_RETRY_AFTER = 5


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested detail into {"field": ["message", ...]}, with dotted paths for nested fields."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(f"{prefix}.{index}" if prefix else str(index), sub)
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return out


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


MALFORMED_JSON = "Malformed JSON: the body is nested too deeply."


def _raised_while_parsing(exc: BaseException) -> bool:
    """Whether the exception came out of a request body parser (DRF's parsers, the json module)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if filename.endswith(("/rest_framework/parsers.py", "/json/decoder.py", "/json/__init__.py")):
            return True
        tb = tb.tb_next
    return False


def exception_handler(exc: Exception, context: dict) -> Response | None:
    # Python's JSON parser recurses once per nesting level, so `[[[[...` thousands deep raises
    # RecursionError, which DRF's parsers do not catch (they catch ValueError): a malformed body, not a
    # server fault. Checked here rather than in one parser class so that every JSON door (including
    # views that name their own parser classes) answers alike; a RecursionError elsewhere stays a 500.
    if isinstance(exc, RecursionError) and _raised_while_parsing(exc):
        exc = drf.ParseError(MALFORMED_JSON)
    if isinstance(exc, DomainError):
        if exc.status == 409:
            count_conflict(exc.code)
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", ["Invalid input."]))
        message = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        response.data = error_body("invalid", message, fields)
    elif isinstance(exc, drf.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


class ApiServerErrorMiddleware:
    """An exception no handler turned into an answer, under /api/: a JSON 500 that tells nothing, logged.

    DRF re-raises what its exception handler does not know, so this one place covers DRF views and plain
    Django views alike. The client gets the error shape, never a traceback or the exception's text (it may
    hold a patient's data); the log gets everything.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unreachable(exception):
            return service_unavailable(request, exception)
        if not is_api(request) or isinstance(exception, Http404 | DjangoPermissionDenied):
            return None  # Django's own answers (handler404 below speaks JSON under /api/)
        logger.exception("Unhandled exception on %s %s", request.method, request.path)
        return JsonResponse(error_body("server_error", SERVER_ERROR_MESSAGE), status=500)


def service_unavailable(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """The database cannot be reached (restarting, failing over): 503 with Retry-After, not a 500.

    A client, a load balancer and an operator each read it right: nothing is broken in the code, try
    again shortly. The request changed nothing (its transaction died with the connection)."""
    logger.warning("database unreachable on %s %s: %s", request.method, request.path, exception)
    response: HttpResponse
    if is_api(request):
        response = JsonResponse(error_body("service_unavailable", UNAVAILABLE_MESSAGE), status=503)
    else:
        response = HttpResponse(UNAVAILABLE_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: what failed outside a view (a middleware reading the session or the user) because
    the database is unreachable answers 503 too; anything else is Django's own 500."""
    exception = sys.exc_info()[1]
    if is_database_unreachable(exception):
        return service_unavailable(request, exception)  # type: ignore[arg-type]  # not None when unreachable
    if is_api(request):
        return JsonResponse(error_body("server_error", SERVER_ERROR_MESSAGE), status=500)
    return defaults.server_error(request)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that matches no route (`/api/v1/appointments/0.5/`) answers JSON."""
    if is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)
