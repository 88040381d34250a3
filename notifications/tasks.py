"""Celery tasks: each takes ids (or nothing), and calls a service.

Beat (django-celery-beat, DatabaseScheduler) runs the periodic ones; see the schedule in the README.
Time limits: the send task's hard limit (90 s) is below the notification lease (OPD_NOTIFICATION_LEASE_
SECONDS, 300 s by default), and every limit here is below the broker's visibility timeout (3600 s), so a
task still running is never handed to a second worker by the broker.
"""

from __future__ import annotations

import logging

from celery import shared_task

from .services import (
    appointment_notify_booked,
    notification_send,
    notifications_dispatch_due,
)

logger = logging.getLogger(__name__)

# A task that found its row not yet due (a duplicate, or a lease still held) looks again at most this
# often; after that the dispatcher is the one to wake the row.
NOT_DUE_RETRIES = 3


@shared_task(
    name="notifications.send",
    bind=True,
    acks_late=True,
    max_retries=None,  # the attempts counter in the row decides when a message has failed
    soft_time_limit=60,
    time_limit=90,
)
def send_notification(self, notification_id: int) -> str:
    """Send one message (notification_send claims it, so duplicates of this task are harmless).

    A failed attempt is retried with exponential backoff: the service records the error and the time of
    the next attempt in the row, and the task re-queues itself for then."""
    outcome = notification_send(notification_id=notification_id)
    # Eager (unit tests): no re-queue, which would run at once and recurse; the dispatcher picks it up.
    may_look_again = outcome.status == "retry" or self.request.retries < NOT_DUE_RETRIES
    if outcome.retry_in is not None and may_look_again and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="notifications.plan_booking_messages", acks_late=True, soft_time_limit=50, time_limit=60)
def plan_booking_messages(appointment_id: int) -> int:
    """After a booking: write its confirmation and reminders (deduplicated, so a redelivered task changes
    nothing) and queue the confirmation's sends. Returns how many messages the appointment has planned."""
    return len(appointment_notify_booked(appointment_id=appointment_id))


@shared_task(name="notifications.dispatch_due", soft_time_limit=50, time_limit=60)
def dispatch_due_notifications() -> int:
    """Every minute: enqueue reminders that have come due, and re-enqueue sends whose task was lost."""
    taken = notifications_dispatch_due()
    if taken:
        logger.info("dispatched %s due notifications", len(taken))
    return len(taken)
