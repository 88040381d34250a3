"""Idempotency-Key: a client's retry of a write gets the first answer instead of a second effect.

The record and the work share one transaction, and the record is written first:

* A concurrent request with the same (user, scope, key) blocks on InnoDB's lock on the unique index entry
  until the first transaction ends. If the first committed, the insert fails with IntegrityError and the
  committed answer is replayed; if it rolled back, the insert goes through and the request runs afresh.
* Only answers are stored, never failures: when the work raises, the record rolls back with it, so a
  refused request may be retried with the same key once the reason is gone.
* The same key with a different request (method, path, body) is refused, since replaying an answer to
  another question would mislead the client.

The transaction is the outermost one, so it is also where InnoDB deadlock victims are retried: several
waiters on a key whose first holder rolled back can deadlock with each other taking it over.

DRF actions take all this with `@idempotent(scope=...)`. With or without the header the action runs in
one transaction that the wrapper opens, so its deadlock retry (opd.core.db.retry_on_deadlock, the one
policy) happens once, there: the services' own decorator sees the open transaction and stays out of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.files.uploadedfile import UploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from rest_framework.request import Request
from rest_framework.response import Response

from .db import retry_on_deadlock, whole_transaction
from .errors import Conflict, DomainError, ValidationFailed
from .models import IdempotencyRecord, User
from .tenancy import signed_in_user

ViewAction = TypeVar("ViewAction", bound=Callable[..., Response])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any
    replayed: bool = False


def fingerprint(*parts: Any) -> str:
    """A stable digest of what was asked (dict keys in any order give the same digest)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def clean_key(raw: str) -> str:
    """A key is 1 to 255 visible ASCII characters (a UUID is the usual choice)."""
    if not raw or len(raw) > MAX_KEY_LENGTH or not all("!" <= ch <= "~" for ch in raw):
        raise ValidationFailed(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, without spaces.",
            fields={HEADER: f"Use 1 to {MAX_KEY_LENGTH} visible ASCII characters, for example a UUID."},
        )
    return raw


def _as_json(body: Any) -> Any:
    # What the first caller receives is exactly what a replay will receive.
    return json.loads(json.dumps(body, cls=DjangoJSONEncoder))


def _replay(*, user: User, scope: str, key: str, digest: str) -> Outcome:
    record = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
    if record is None:
        # Removed between our insert and this read (an expiry sweep): nothing was done, the client may retry.
        raise Conflict(
            "The request could not be completed; nothing was changed. Please try again.", code="busy"
        )
    if record.fingerprint != digest:
        raise IdempotencyKeyReused(
            f"This {HEADER} was already used for a different request; use a new key for a new request.",
            fields={HEADER: "Already used for a different request."},
        )
    if record.response_status is None:
        raise Conflict(f"A request with this {HEADER} is still in progress.", code="idempotency_in_progress")
    return Outcome(status=record.response_status, body=record.response_body, replayed=True)


@retry_on_deadlock
def run_idempotent(
    *, user: User, scope: str, key: str, digest: str, perform: Callable[[], tuple[int, Any]]
) -> Outcome:
    """Run `perform` once per (user, scope, key) and return its (status, JSON body), or the stored one.

    `perform` reports failure by raising (nothing is stored); it may run again after a deadlock, so it
    must do all its reads and writes itself. Side effects registered with on_commit fire once, on commit.
    """
    with whole_transaction():
        try:
            # A savepoint, so a duplicate leaves the outer transaction usable for reading the winner.
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=user, scope=scope, key=key, fingerprint=digest)
        except IntegrityError:
            return _replay(user=user, scope=scope, key=key, digest=digest)
        status, body = perform()
        record.response_status = status
        record.response_body = _as_json(body)
        record.save(update_fields=["response_status", "response_body"])
        return Outcome(status=status, body=record.response_body)


class AnswerAfterCommit(Response):
    """A Response whose body is built when it is first read. An action's answer (a serializer over rows the
    action already holds) is then built by the renderer, after the action's transaction has committed,
    so the rows it locked are not held while it serializes; with an Idempotency-Key the record reads it
    inside the transaction, to store it, as before."""

    def __init__(self, build: Callable[[], Any], status: int) -> None:
        super().__init__(None, status=status)
        self._build: Callable[[], Any] | None = build

    @property
    def data(self) -> Any:
        if self._build is not None:
            build, self._build = self._build, None
            self._data = build()
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._build, self._data = None, value


def _file_digest(upload: UploadedFile) -> dict[str, Any]:
    """A file part by its name, size and content digest (JSON cannot hold the file itself); the file is
    rewound so the view reads it whole."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return {"file": upload.name, "size": upload.size, "sha256": digest.hexdigest()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return _file_digest(value)
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    return value


def _plain(data: Any) -> Any:
    """The request body as JSON-able data to fingerprint: a multipart body's files by their digest."""
    if hasattr(data, "lists"):  # a QueryDict from a form-encoded or multipart body
        return {key: _plain_value(values) for key, values in data.lists()}
    if isinstance(data, Mapping):
        return {key: _plain_value(value) for key, value in data.items()}
    return data


@retry_on_deadlock
def _run_atomic(perform: Callable[[], Response]) -> Response:
    with whole_transaction():
        return perform()


def idempotent_response(request: Request, *, scope: str, perform: Callable[[], Response]) -> Response:
    """DRF door: honour an Idempotency-Key header around `perform() -> Response`.

    Without the header `perform` runs once in a transaction of its own (retried whole after a deadlock,
    as with the header). A replay carries `Idempotent-Replayed: true` and the first answer's status and
    body (not its other headers).
    """
    raw = request.headers.get(HEADER)
    if raw is None:
        return _run_atomic(perform)
    key = clean_key(raw)

    def run() -> tuple[int, Any]:
        response = perform()
        return response.status_code, response.data

    outcome = run_idempotent(
        # The actions wrapped here require a signed-in user (their permission classes run first).
        user=signed_in_user(request),
        scope=scope,
        key=key,
        digest=fingerprint(request.method, request.path, _plain(request.data)),
        perform=run,
    )
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
    return Response(outcome.body, status=outcome.status, headers=headers)


def idempotent(*, scope: str) -> Callable[[ViewAction], ViewAction]:
    """Decorate a DRF view action (`def cancel(self, request, pk)`) so that it honours Idempotency-Key
    within `scope` and runs in one outermost transaction, retried whole after a deadlock. The action must
    do all its reads and writes itself, since a retry runs it again."""

    def decorate(view_action: ViewAction) -> ViewAction:
        @functools.wraps(view_action)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            return idempotent_response(
                request, scope=scope, perform=lambda: view_action(view, request, *args, **kwargs)
            )

        return wrapper  # type: ignore[return-value]

    return decorate
