"""A small domain-event dispatcher: lower apps publish, higher apps subscribe in AppConfig.ready().

Events are delivered after the surrounding transaction commits and carry ids, never model instances,
so a subscriber (a Celery task, a channel-layer send) always reads committed data.

A subscriber that only hands the event on (a Celery task, a channel-layer send) may subscribe with
after_response=True: the process's sender thread (opd.core.outbox) runs it once the request has answered.

Each event is also written to the outbox (opd.core.models.OutboxEvent) in that same transaction: the
process that committed delivers it at once, and if it dies before it could (or a subscriber failed), the
relay (opd.core.outbox) delivers it from the row later. Delivery is therefore at least once, and every
subscriber must be idempotent: a second delivery of the same event has no further effect.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]
_subscribers: dict[str, list[Handler]] = defaultdict(list)
_after_response: dict[str, list[Handler]] = defaultdict(list)
# Handlers that redo, for an event the relay delivers, what the publishing process did itself in the
# change's own commit hooks (the slot listing's version bump): the fast path does not call them.
_on_redelivery: dict[str, list[Handler]] = defaultdict(list)

# One event per booking, cancellation or move (scheduling.services.booking): ids, the clinic and day
# (and the previous ones after a move), and `versions`/`entry`/`public_entry` for the live queues,
# empty unless the appointment is (or was) on its clinic's today.
APPOINTMENT_BOOKED = "appointment.booked"
APPOINTMENT_CANCELLED = "appointment.cancelled"
APPOINTMENT_RESCHEDULED = "appointment.rescheduled"
# Any change to a doctor's live queue (check-in, start, complete, no-show, priority, call, skip, recall).
QUEUE_CHANGED = "queue.changed"
# Every event that changes an appointment, each published once per change: subscribe to these to hear
# of every change exactly once.
APPOINTMENT_EVENTS = (APPOINTMENT_BOOKED, APPOINTMENT_CANCELLED, APPOINTMENT_RESCHEDULED, QUEUE_CHANGED)
# The events that carry live-queue versions (all of the above).
QUEUE_EVENTS = APPOINTMENT_EVENTS
# Something a queue's people must act on now, not a change of the queue (no version): NEWS2 rose to an
# urgent or emergency response, or a waiting patient's observations are due again. Carries appointment_id,
# doctor_id, clinic_id and `alert` (kind, level, title, action, token, patient name, ...); scheduling's
# realtime passes it to the doctor's queue socket and, without the name, to the clinic's.
QUEUE_ALERT = "queue.alert"
# A clinical record moved between days or categories after the fact: vitals written again (the NEWS2 band
# leaves the day of the earlier vitals), a care note re-categorised. Carries clinic_id and day (local).
CLINICAL_DAY_CHANGED = "clinical.day_changed"
# A consultation was written (notes, vitals, prescription lines, completion): its id, appointment_id,
# doctor_id, the new version and status; no clinical content. The doctor's open pages reload or warn.
CONSULTATION_CHANGED = "consultation.changed"
# A person's access narrowed (deactivated, role changed, a membership removed, a doctor's profile suspended
# or sent back to pending). Carries user_id and reason; open websockets re-check (opd.core.realtime).
ACCESS_REVOKED = "access.revoked"


def subscribe(event: str, handler: Handler, *, after_response: bool = False) -> None:
    """`after_response`: the handler only hands the event on (a task to the broker, a message to the
    channel layer) and nothing the request answers depends on it, so the process's sender thread may run
    it a moment after the request has answered (opd.core.outbox.send_after_response). Every other handler
    runs at once after the commit, before the answer."""
    group, other = (_after_response, _subscribers) if after_response else (_subscribers, _after_response)
    if handler in other[event]:
        other[event].remove(handler)
    if handler not in group[event]:
        group[event].append(handler)


def subscribe_redelivery(event: str, handler: Handler) -> None:
    """`handler` runs only when the relay delivers `event`: the publishing process died between the
    commit and its hooks (or a subscriber failed), so what those hooks did may not have happened."""
    if handler not in _on_redelivery[event]:
        _on_redelivery[event].append(handler)


def unsubscribe(event: str, handler: Handler) -> None:
    for group in (_subscribers, _after_response, _on_redelivery):
        if handler in group[event]:
            group[event].remove(handler)


def publish(event: str, **payload: Any) -> None:
    """Announce a change: one row in the outbox, written in the caller's transaction, and delivery to the
    subscribers once it commits."""
    from . import outbox
    from .services.outbox import outbox_event_write

    row = outbox_event_write(event=event, payload=payload)

    def deliver_now() -> None:
        # The fast path: no wait for the relay. The row is marked delivered off the request (a batched
        # UPDATE a moment later); if this process dies first, the relay delivers it again.
        failure = _call(_subscribers[event], event, payload)
        later = list(_after_response[event])
        if later and settings.OPD_EVENTS_SEND_AFTER_RESPONSE:
            # The sender thread runs them and marks the row; until it has, the row stays undelivered, so
            # an event lost with the process is the relay's to deliver, as before.
            outbox.send_after_response(row.pk, event, payload, later, failure)
            return
        failure = failure or _call(later, event, payload)
        if failure is None:
            outbox.mark_delivered(row.pk)

    transaction.on_commit(deliver_now)


def deliver(event: str, payload: dict[str, Any]) -> str | None:
    """Call every subscriber of `event` once, here and now (the relay), those of redeliveries included;
    the first failure's text, or None when all succeeded."""
    return _call([*_subscribers[event], *_after_response[event], *_on_redelivery[event]], event, payload)


def _call(handlers: list[Handler], event: str, payload: dict[str, Any]) -> str | None:
    failure = None
    for handler in list(handlers):
        try:
            handler(**payload)
        except Exception as exc:
            # One failing subscriber must not undo a committed booking or starve the others; the row stays
            # undelivered and the relay tries the event again later (the others are idempotent).
            logger.exception("handler %r failed for %s %r", handler, event, payload)
            failure = failure or f"{getattr(handler, '__qualname__', handler)}: {exc!r}"[:2000]
    return failure
