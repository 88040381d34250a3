"""The outbox's writes: an event's row, marking rows delivered, the relay's claim and delivery, pruning.
How the two delivery paths fit together is told in opd.core.outbox."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import events
from ..db import RowWriter
from ..models import OutboxEvent

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
RELAY_BATCH = 200
# Every event's row: one INSERT, its SQL built once (on the booking path, the ORM's compile cost more).
_OUTBOX_ROW = RowWriter(OutboxEvent)


def outbox_event_write(*, event: str, payload: dict[str, Any]) -> OutboxEvent:
    """One INSERT in the caller's transaction (no savepoint, no read). A payload JSON cannot carry fails
    here, in the change's own transaction, rather than in the relay later."""
    now = timezone.now()
    return _OUTBOX_ROW.insert(
        OutboxEvent(
            event=event,
            payload=payload,
            created_at=now,
            due_at=now + dt.timedelta(seconds=settings.OPD_OUTBOX_GRACE_SECONDS),
        )
    )


def outbox_mark_delivered(*, ids: list[int]) -> int:
    """Mark these delivered. Rows another transaction holds (a relay's claim) are skipped, not waited for:
    the relay then delivers them once more, which is allowed; a marker blocked on a lock is not."""
    with transaction.atomic():
        free = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids, delivered_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not free:
            return 0
        return OutboxEvent.objects.filter(pk__in=free).update(delivered_at=timezone.now())


def backoff(attempt: int) -> dt.timedelta:
    """How long a row claimed for its `attempt`-th delivery waits before it may be taken again: the lease
    of the relay delivering it, and the pause before a retry if that delivery fails."""
    seconds = settings.OPD_OUTBOX_RETRY_SECONDS * 2 ** max(attempt - 1, 0)
    return dt.timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class RelayReport:
    delivered: int
    failed: int


def outbox_relay_once(*, limit: int = RELAY_BATCH, now: dt.datetime | None = None) -> RelayReport:
    """Deliver up to `limit` due, undelivered events, oldest first. Locks the claimed rows (SKIP LOCKED:
    a second relay takes other rows, never waits) only while it moves their due_at on; the handlers run
    after that commit, outside any transaction, as they would after the change's own commit."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(
                delivered_at__isnull=True,
                due_at__lte=now,
                attempts__lt=settings.OPD_OUTBOX_MAX_ATTEMPTS,
            )
            .order_by("due_at", "pk")[:limit]
        )
        if not claimed:
            return RelayReport(delivered=0, failed=0)
        # Grouped by attempt so each group is one UPDATE: a handful of statements, not one per row.
        by_attempt: dict[int, list[int]] = {}
        for row in claimed:
            by_attempt.setdefault(row.attempts + 1, []).append(row.pk)
        for attempt, ids in by_attempt.items():
            OutboxEvent.objects.filter(pk__in=ids).update(
                attempts=F("attempts") + 1, due_at=now + backoff(attempt)
            )
    delivered: list[int] = []
    failed = 0
    for row in claimed:
        error = events.deliver(row.event, row.payload)
        if error is None:
            delivered.append(row.pk)
            continue
        failed += 1
        OutboxEvent.objects.filter(pk=row.pk).update(last_error=error)
        if row.attempts + 1 >= settings.OPD_OUTBOX_MAX_ATTEMPTS:
            logger.error(
                "outbox event %s (%s) failed %d times; giving up", row.pk, row.event, row.attempts + 1
            )
    if delivered:
        OutboxEvent.objects.filter(pk__in=delivered).update(delivered_at=timezone.now())
    return RelayReport(delivered=len(delivered), failed=failed)


def outbox_prune(*, older_than: dt.timedelta, batch_size: int = 1000) -> int:
    """Delete events delivered longer ago than `older_than`, in batches (short locks). Undelivered rows,
    the ones the relay gave up on included, stay for an operator to read in the admin."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            OutboxEvent.objects.filter(delivered_at__lt=cutoff).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += OutboxEvent.objects.filter(pk__in=ids).delete()[0]
