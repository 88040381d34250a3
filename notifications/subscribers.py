"""Events in, Celery tasks out: what notifications does when something it listens to has committed.

Subscribed once each in NotificationsConfig.ready(). Scheduling sits below this app and cannot call it:
it publishes one event per booking, cancellation or move (ids only), and the handlers here turn them into
task dispatch (or, for the rare cancellations and moves, call the service at once so reminders stop
before anything else can send). The services never import the tasks: when they have written outbox rows
that are due, they publish NOTIFICATIONS_DISPATCHED and the handler here queues the sends.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.exceptions import OperationalError as BrokerUnavailable

from opd.core import events
from opd.core.models import User

from . import conf
from .backends import push_unread_count
from .selectors import unread_count
from .services import (
    NOTIFICATIONS_DISPATCHED,
    NOTIFICATIONS_READ,
    appointment_notify_booked,
    appointment_notify_cancelled,
    appointment_notify_rescheduled,
)
from .tasks import plan_booking_messages, send_notification

logger = logging.getLogger(__name__)


def enqueue_send(notification_id: int) -> None:
    """Put one send task on the queue."""
    # None is Celery's default queue; its stubs say str.
    send_notification.apply_async(args=(notification_id,), queue=conf.queue())  # type: ignore[arg-type]


def on_notifications_dispatched(*, notification_ids: list[int], **_: Any) -> None:
    for pk in notification_ids:
        try:
            enqueue_send(pk)
        except Exception:
            # The row is committed; the dispatcher enqueues it once the broker answers again.
            logger.exception("could not queue notification %s; the dispatcher will", pk)


def on_appointment_booked(*, appointment_id: int, **_: Any) -> None:
    """Have a worker plan the confirmation and reminders (appointment_notify_booked), so the booking's
    answer does not wait for rendering and writing them. If the broker cannot take the task, they are
    planned here and now instead: the patient is told either way."""
    try:
        # None is Celery's default queue; its stubs say str.
        plan_booking_messages.apply_async(args=(appointment_id,), queue=conf.queue())  # type: ignore[arg-type]
    except BrokerUnavailable:
        logger.warning(
            "broker unavailable: planning appointment %s's messages in the request", appointment_id
        )
        appointment_notify_booked(appointment_id=appointment_id)


def on_notifications_read(*, user_id: int, **_: Any) -> None:
    """Messages were marked read: the user's other open pages show the new unread count."""
    user = User.objects.filter(pk=user_id).first()
    if user is not None:
        push_unread_count(user_id, unread_count(user))


def subscribe() -> None:
    # A task to the broker: sent after the booking has answered (opd.core.outbox's sender thread).
    events.subscribe(events.APPOINTMENT_BOOKED, on_appointment_booked, after_response=True)
    events.subscribe(events.APPOINTMENT_CANCELLED, appointment_notify_cancelled)
    events.subscribe(events.APPOINTMENT_RESCHEDULED, appointment_notify_rescheduled)
    events.subscribe(NOTIFICATIONS_DISPATCHED, on_notifications_dispatched)
    events.subscribe(NOTIFICATIONS_READ, on_notifications_read)
