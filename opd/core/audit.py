"""The audit trail and the access log: one append-only table, `AuditEvent`.

Writes are audited by the service that makes them, inside its transaction (`audit`). Reads of clinical
records are logged with `record_access`: inside a request they are buffered and written in one INSERT
when the response is ready (`AuditContextMiddleware`), so a page that shows forty records costs one
query, not forty; outside a request (a websocket consumer, a worker) they are written at once.

Who, from where: the middleware puts the request's source address and user agent in a context variable,
so a service called from any door fills them in without every caller passing them.

Tamper evidence: every row is stamped here with `mac`, a keyed HMAC (OPD_AUDIT_KEY) of its content, and
the sealer (opd.core.services.audit_chain) chains the rows of each organization in AuditSeal; triggers
refuse UPDATE and DELETE. Edits keep their before and after through `changes`, which never copies
clinical free text or secret identifiers into the trail (that would undo their encryption at rest).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .db import RowWriter
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


def audit_key() -> bytes:
    return settings.OPD_AUDIT_KEY.encode()


def keyed_digest(*parts: bytes | str) -> str:
    """HMAC-SHA256 with the audit key over length-prefixed parts (so no two part lists collide)."""
    mac = hmac.new(audit_key(), digestmod=hashlib.sha256)
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        mac.update(len(raw).to_bytes(8, "big"))
        mac.update(raw)
    return mac.hexdigest()


# Not content: the row's id (the seal covers it) and the MAC itself.
NOT_CONTENT = frozenset({"id", "mac"})
# Left out of the canonical form: a column added later with an empty default (NULL, "", false, 0, {})
# then leaves the MACs of older rows valid. Empty and absent mean the same for every audit column.
EMPTY: tuple[Any, ...] = (None, "", False, 0, {}, [])


def canonical_content(event: Any) -> str:
    """The event's content, every column but `id` and `mac` (taken from the model, so a new column is
    covered without a list to keep), as one string that reads the same before the row is written and
    after it is read back from MariaDB or SQLite: JSON with sorted keys, times in UTC to the microsecond,
    addresses as Django stores them. Works on historical models too (the migration that backfills)."""
    values: dict[str, Any] = {}
    for column in type(event)._meta.concrete_fields:
        name = column.attname
        if name in NOT_CONTENT:
            continue
        value = getattr(event, name)
        if isinstance(column, models.DateTimeField) and value is not None:
            value = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
        elif isinstance(column, models.GenericIPAddressField) and value:
            value = column.to_python(value)
        elif isinstance(column, models.JSONField):
            # Through JSON and back: the column keeps what json.dumps makes of tuples and int keys.
            value = json.loads(json.dumps(value))
        else:
            value = _plain(value)
        if any(value == empty and type(value) is type(empty) for empty in EMPTY):
            continue
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_mac(event: Any) -> str:
    return keyed_digest("opd.audit.event", canonical_content(event))


# Every audit row is written by this one INSERT (its SQL built once), as save(force_insert=True) would.
_AUDIT_ROW = RowWriter(AuditEvent)


# What `changes` never copies into the trail: clinical free text and identifiers that are encrypted at
# rest. Their change is recorded with lengths and a keyed fingerprint (the same value gives the same
# fingerprint, so an auditor holding the key can confirm a suspected value; a reader of the table cannot).
REDACTED_FIELDS = frozenset(
    {
        # consultations
        "chief_complaint",
        "history",
        "examination",
        "assessment",
        "plan",
        "text",
        "notes",
        "instructions",
        "addendum",
        # patients
        "insurance_policy_number",
        "national_id",
        "phone",
        "phone_digits",
        "address",
        "emergency_contact_name",
        "emergency_contact_phone",
    }
)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return str(value)


def _fingerprint(value: Any) -> dict[str, Any]:
    text = "" if value is None else str(value)
    return {"length": len(text), "fingerprint": keyed_digest("opd.audit.redacted", text)[:16]}


def changes(
    before: Mapping[str, Any] | Any,
    after: Mapping[str, Any] | Any,
    fields: Iterable[str],
    *,
    redacted: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """`{field: {"before": old, "after": new}}` for each of `fields` whose value differs.

    `before`/`after` are mappings or model instances. Fields in REDACTED_FIELDS or `redacted` keep
    `{"length", "fingerprint"}` instead of the value: the audit table is not encrypted, and a copy of a
    note or an insurance number here would defeat encryption at rest."""
    hidden = REDACTED_FIELDS | frozenset(redacted)

    def read(source: Any, name: str) -> Any:
        return source.get(name) if isinstance(source, Mapping) else getattr(source, name)

    result: dict[str, dict[str, Any]] = {}
    for name in fields:
        old, new = read(before, name), read(after, name)
        if old == new:
            continue
        if name in hidden:
            result[name] = {"before": _fingerprint(old), "after": _fingerprint(new), "redacted": True}
        else:
            result[name] = {"before": _plain(old), "after": _plain(new)}
    return result


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
    event = AuditEvent(
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
        data=_plain(data or {}),
        created_at=timezone.now(),
    )
    event.mac = event_mac(event)
    return event


def audit(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | tuple[str, Any],
    organization_id: int | None,
    **data: Any,
) -> AuditEvent:
    """Record a change (or a sign-in event) now, in the caller's transaction. `obj` is the row, or
    `(object_type, object_id)` for something without one.

    Everything in `data` is kept as given; a `clinic_id` or `patient_id` among it also fills the
    column, so the trail can be read per clinic and per patient. A `reason=` stays in `data` (the
    `reason` column is for the reason an access required)."""
    clinic_id, patient_id = data.get("clinic_id"), data.get("patient_id")
    if isinstance(obj, tuple):  # what has no row: a sign-in attempt for an unknown name
        object_type, object_id = obj[0], str(obj[1])
    else:
        object_type, object_id = obj._meta.label_lower, str(obj.pk)
    event = _event(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        organization_id=organization_id,
        clinic_id=clinic_id if isinstance(clinic_id, int) else None,
        patient_id=patient_id if isinstance(patient_id, int) else None,
        data=data,
    )
    _AUDIT_ROW.insert(event)
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
        _AUDIT_ROW.insert(event)


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
