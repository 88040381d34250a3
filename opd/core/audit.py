"""The audit trail and the access log: one append-only table, `AuditEvent`.

Writes are audited by the service that makes them, inside its transaction (`audit`). Reads of clinical
records are logged with `record_access`: inside a request they are buffered and written in one INSERT
when the response is ready (`AuditContextMiddleware`), so a page that shows forty records costs one
query, not forty; outside a request (a websocket consumer, a worker) they are written at once.

Who, from where: the middleware puts the request's source address and user agent in a context variable,
so a service called from any door fills them in without every caller passing them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse

from .models import AuditEvent, User


@dataclass
class RequestContext:
    source_ip: str | None = None
    user_agent: str = ""
    pending: list[AuditEvent] = field(default_factory=list)


_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("opd_audit", default=None)


def source_address(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: behind the documented nginx, the proxy sets it from the client (real_ip module);
    # X-Forwarded-For is the client's to forge.
    return request.META.get("REMOTE_ADDR") or None


def current_context() -> RequestContext | None:
    return _context.get()


def _event(
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: str,
    organization_id: int | None,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    context = _context.get()
    real_actor = actor if actor is not None and actor.pk else None
    return AuditEvent(
        organization_id=organization_id,
        actor=real_actor,
        actor_role=("superuser" if real_actor.is_superuser else real_actor.role) if real_actor else "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        clinic_id=clinic_id,
        patient_id=patient_id,
        source_ip=context.source_ip if context else None,
        user_agent=context.user_agent if context else "",
        reason=reason,
        data=data or {},
    )


def audit(
    *,
    actor: User | None,
    action: str,
    obj: models.Model,
    organization_id: int | None,
    **data: Any,
) -> AuditEvent:
    """Record a change (or a sign-in event) now, in the caller's transaction.

    Everything in `data` is kept as given; a `clinic_id` or `patient_id` among it also fills the
    column, so the trail can be read per clinic and per patient. A `reason=` stays in `data` (the
    `reason` column is for the reason an access required)."""
    clinic_id, patient_id = data.get("clinic_id"), data.get("patient_id")
    event = _event(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        organization_id=organization_id,
        clinic_id=clinic_id if isinstance(clinic_id, int) else None,
        patient_id=patient_id if isinstance(patient_id, int) else None,
        data=data,
    )
    event.save(force_insert=True)
    return event


def record_access(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | tuple[str, Any],
    organization_id: int | None,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    reason: str = "",
    **data: Any,
) -> None:
    """Log a read of a clinical record (`obj`, or `(object_type, object_id)` for a list or an export).

    Buffered until the response is ready when called inside a request; written at once otherwise.
    """
    if isinstance(obj, tuple):
        object_type, object_id = obj[0], str(obj[1])
    else:
        object_type, object_id = obj._meta.label_lower, str(obj.pk)
    event = _event(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        organization_id=organization_id,
        clinic_id=clinic_id,
        patient_id=patient_id,
        reason=reason,
        data=data,
    )
    context = _context.get()
    if context is not None:
        context.pending.append(event)
    else:
        event.save(force_insert=True)


def flush_pending() -> int:
    """Write the buffered access events of this request in one INSERT; answers how many."""
    context = _context.get()
    if context is None or not context.pending:
        return 0
    events, context.pending = context.pending, []
    AuditEvent.objects.bulk_create(events)
    return len(events)


class AuditContextMiddleware:
    """Sets the request context for audit rows and writes the request's buffered access events."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _context.set(
            RequestContext(
                source_ip=source_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            )
        )
        try:
            response = self.get_response(request)
            flush_pending()
            return response
        finally:
            _context.reset(token)


@contextmanager
def access_context(*, source_ip: str | None, user_agent: str) -> Iterator[None]:
    """The request context for a door that is not an HTTP request (a websocket consumer): rows written
    inside carry the socket's address and user agent, and buffered reads go in one INSERT at the end."""
    token = _context.set(RequestContext(source_ip=source_ip, user_agent=user_agent[:300]))
    try:
        yield
        flush_pending()
    finally:
        _context.reset(token)
