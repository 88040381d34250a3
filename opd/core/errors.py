"""The project's error types. Services raise them; the API handler and pages turn them into answers."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        fields: Mapping[str, list[str] | str] | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.fields = {k: v if isinstance(v, list) else [v] for k, v in (fields or {}).items()}
        if code:
            self.code = code


class ValidationFailed(DomainError):
    code = "invalid"
    status = 400


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409
