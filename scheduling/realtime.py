"""The live queue's fan-out: domain events in, channel-layer group messages out.

Subscribed in SchedulingConfig.ready(). A handler runs after commit in whichever process made the change
(an API or page request, the admin, a Celery task, the ASGI server itself) and sends through the channel
layer, which is Redis in production, so every ASGI process with a socket in the group passes it on.

Group messages (consumed by scheduling.consumers.QueueConsumer.queue_event):
    {"type": "queue.event", "queue": "doctor:7", "version": 42, "action": "checked_in",
     "appointment_id": 1234, "entry": {...}}
`entry` is the appointment as the queue shows it now (selectors.queue_entry), without a patient's name on
a clinic queue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from .models import Appointment, Slot
from .selectors import CLINIC_QUEUE, local_day_bounds, parse_queue_name, queue_entry
from .services.queue import queue_note_booking

logger = logging.getLogger(__name__)


def group_name(queue: str) -> str:
    """ "doctor:7" -> "queue.doctor.7" (channel-layer group names allow letters, digits, - _ and .)."""
    return "queue." + queue.replace(":", ".")


def on_queue_changed(
    *, appointment_id: int, action: str, versions: dict[str, int] | None = None, **_: Any
) -> None:
    if versions is None:
        # Published by code that did not bump the versions: bump them now, in a transaction of its own;
        # that publishes again, with versions, and comes back here.
        queue_note_booking(appointment_id=appointment_id, action=action)
        return
    appt = (
        Appointment.objects.select_related("patient", "department", "doctor__user")
        .filter(pk=appointment_id)
        .first()
    )
    messages = []
    for queue, version in sorted(versions.items()):
        kind, _pk = parse_queue_name(queue)
        entry = queue_entry(appt, public=kind == CLINIC_QUEUE) if appt is not None else None
        messages.append(
            (
                group_name(queue),
                {
                    "type": "queue.event",
                    "queue": queue,
                    "version": version,
                    "action": action,
                    "appointment_id": appointment_id,
                    "entry": entry,
                },
            )
        )
    _send(messages)


def _send(messages: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(_send_all)(messages)
        return
    # Sync code running inside an event loop's thread (not a server's request thread, which has none;
    # a script driving a browser, say) cannot wait on the loop it blocks: send from a thread of its own.
    sender = threading.Thread(target=async_to_sync(_send_all), args=(messages,), name="queue-broadcast")
    sender.start()
    sender.join()


async def _send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        await layer.group_send(group, message)


def _is_today(appt_start, clinic) -> bool:
    start, end = local_day_bounds(clinic, timezone.now())
    return start <= appt_start < end


# No clinic's "today" holds an instant further than this from now (a local day lasts at most 25 hours
# and zones lie within 14 hours of UTC).
NOT_TODAY_ANYWHERE = dt.timedelta(hours=40)


def on_booking_changed(
    *,
    action: str,
    appointment_id: int,
    previous_slot_id: int | None = None,
    start: dt.datetime | None = None,
    **_: Any,
) -> None:
    """A booking, cancellation or move that concerns today changes who the doctor expects."""
    if previous_slot_id is None and start is not None and abs(start - timezone.now()) > NOT_TODAY_ANYWHERE:
        return  # most bookings are for another day: no need to read the row to know
    appt = Appointment.objects.select_related("clinic").filter(pk=appointment_id).first()
    if appt is None:
        return
    touches_today = _is_today(appt.start, appt.clinic)
    doctor_ids = []
    if previous_slot_id is not None:
        previous = Slot.objects.select_related("clinic").filter(pk=previous_slot_id).first()
        if previous is not None and _is_today(previous.start, previous.clinic):
            touches_today = True
            doctor_ids.append(previous.doctor_id)
    if touches_today:
        queue_note_booking(appointment_id=appt.pk, action=action, doctor_ids=doctor_ids)


on_booked = functools.partial(on_booking_changed, action="booked")
on_cancelled = functools.partial(on_booking_changed, action="cancelled")
on_rescheduled = functools.partial(on_booking_changed, action="rescheduled")
