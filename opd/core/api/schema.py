"""The OpenAPI side of the error contract: what every operation can answer, and nullability from the model.

Views document the refusals that are theirs (`error_responses(409, ...)` in `extend_schema`); `AutoSchema`
adds the ones DRF's machinery answers for any view, read from the operation itself, so no view can forget
them: 401 (authentication), 403 (a role check, or CSRF for session clients), 404 (a path id, or a page past
the end, or a body id), 400 (a body or filter), 415 (a body in another media type), 406 (an Accept
it cannot offer), 429 with Retry-After (a throttled operation, opd.core.api.throttling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import append_meta, force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.views import APIView

from .serializers import ErrorSerializer, ScopedPrimaryKeyField
from .throttling import throttle_scope

DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input; `fields` names each problem.",
    401: "Not signed in, or the token is unknown, expired or revoked.",
    403: "The role may not do this, or a doctor's clinical profile is pending approval or suspended (code "
    "`no_clinical_standing`), or, for a session client, the CSRF check failed.",
    404: "Unknown, or not visible to this user: a path id, an id in the body (named in `fields`), "
    "or a page past the end (`Invalid page.`).",
    406: "The Accept header asks for a media type this operation does not answer.",
    409: "Conflict: the current state forbids it.",
    415: "The body is in a media type this operation does not read.",
    422: "The Idempotency-Key was already used for a different request.",
    429: "Too many requests (`throttled`), or sign-in locked after repeated failures (`locked_out`); "
    "the Retry-After header says how many seconds to wait.",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

# Wall-clock times of day (a clinic's session hours) carry no offset, which JSON Schema's "time" requires.
LOCAL_TIME = {
    "type": "string",
    "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
    "example": "09:00:00",
    "description": "Local time of day in the clinic's time zone, HH:MM[:SS].",
}

PAGINATION_PARAMETERS = {"page", "page_size"}


def error_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int, OpenApiResponse]:
    """`responses={200: X, **error_responses(404, 409, descriptions={409: "..."})}` in `extend_schema`."""
    described = {**DESCRIPTIONS, **(descriptions or {})}
    return {status: OpenApiResponse(ErrorSerializer, description=described[status]) for status in statuses}


def _column_is_nullable(field: serializers.Field) -> bool:
    """Whether a model serializer's field reads a column (or follows a foreign key) that may be NULL."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or field.source == "*":
        return False
    for part in field.source.split("."):
        try:
            column = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False  # a property or method: its own declaration says
        if column.null:
            return True
        model = column.related_model
        if model is None:
            return False
    return False


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for status, description in self._framework_errors(operation).items():
            if str(status) not in responses:
                answer = OpenApiResponse(ErrorSerializer, description=description)
                responses[str(status)] = self._get_response_for_code(answer, str(status))
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RETRY_AFTER)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _framework_errors(self, operation: dict) -> dict[int, str]:
        parameters = operation.get("parameters", [])
        query = {p["name"] for p in parameters if p["in"] == "query"}
        has_path_ids = any(p["in"] == "path" for p in parameters)
        has_body = "requestBody" in operation
        permissions = self.view.get_permissions()
        authenticators = self.view.get_authenticators()
        errors = {}
        if has_body or query - PAGINATION_PARAMETERS:
            errors[400] = DESCRIPTIONS[400]
        if authenticators and not all(isinstance(p, AllowAny) for p in permissions):
            errors[401] = DESCRIPTIONS[401]
            refuses_roles = any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions)
            checks_csrf = self.method not in SAFE_METHODS and any(
                isinstance(a, SessionAuthentication) for a in authenticators
            )
            # Any signed-in request may also be refused for a missing second factor (opd.core.second_factor:
            # a deployment's and an organization's setting), so every authenticated operation can answer 403.
            if refuses_roles or checks_csrf or authenticators:
                errors[403] = DESCRIPTIONS[403]
        if has_path_ids or "page" in query or self._looks_up_body_ids():
            errors[404] = DESCRIPTIONS[404]
        if type(self.view).perform_content_negotiation is APIView.perform_content_negotiation:
            errors[406] = DESCRIPTIONS[406]
        if has_body:
            errors[415] = DESCRIPTIONS[415]
        if self.view.get_throttles() and throttle_scope(self.view, self.method):
            errors[429] = DESCRIPTIONS[429]
        return errors

    def _looks_up_body_ids(self) -> bool:
        """A body id is looked up in the user's scope: unknown there answers 404 naming the field."""
        if self.method in SAFE_METHODS:
            return False
        serializer = force_instance(self.get_request_serializer())
        fields = getattr(serializer, "fields", {})
        return any(isinstance(field, ScopedPrimaryKeyField) for field in fields.values())

    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict:
        meta = super()._get_serializer_field_meta(field, direction)
        # A field declared by hand on a model serializer (a read-only UtcDateTimeField, say) does not
        # inherit the column's null=True as the generated ones do; without this, `cancelled_at` of a
        # booked appointment would contradict the schema.
        if "nullable" not in meta and isinstance(field, serializers.Field) and _column_is_nullable(field):
            meta["nullable"] = True
        return meta

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict:
        if isinstance(field, serializers.TimeField):
            return append_meta(dict(LOCAL_TIME), self._get_serializer_field_meta(field, direction))
        return super()._map_serializer_field(field, direction, bypass_extensions)
