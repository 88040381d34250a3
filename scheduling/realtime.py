"""The live queue's fan-out: domain events in, channel-layer group messages out, nothing else.

Subscribed in SchedulingConfig.ready() to every event that carries queue versions: QUEUE_CHANGED and
the bookings' APPOINTMENT_BOOKED, _CANCELLED and _RESCHEDULED (whose `versions` are empty when the
appointment is not today). The services bumped the versions and built the entries inside their
transaction (scheduling.services.queue.queue_change), so a handler reads nothing and writes nothing: it
runs after commit in whichever process made the change (an API or page request, the admin, a Celery
task, the ASGI server itself) and sends through the channel layer, which is Redis in production, so
every ASGI process with a socket in the group passes it on.

Group messages (consumed by scheduling.consumers.QueueConsumer.queue_event):
    {"type": "queue.event", "queue": "doctor:7", "version": 42, "action": "checked_in",
     "appointment_id": 1234, "entry": {...}, "text": "<the client's event frame, as JSON text>"}
`entry` is the appointment as the queue shows it (selectors.queue_entry), without a patient's name on a
clinic queue.
"""

from __future__ import annotations

import json
from typing import Any

from opd.core.channel_send import group_send_many

from .selectors import CLINIC_QUEUE, DOCTOR_QUEUE, parse_queue_name, queue_name


def group_name(queue: str) -> str:
    """ "doctor:7" -> "queue.doctor.7" (channel-layer group names allow letters, digits, - _ and .)."""
    return "queue." + queue.replace(":", ".")


def queue_messages(
    *,
    appointment_id: int,
    action: str,
    versions: dict[str, int],
    entry: dict[str, Any] | None,
    public_entry: dict[str, Any] | None,
) -> list[tuple[str, dict[str, Any]]]:
    """One group message per queue the change bumped; the waiting room's carries the public entry."""
    messages = []
    for queue, version in sorted(versions.items()):
        kind, _pk = parse_queue_name(queue)
        message = {
            "type": "queue.event",
            "queue": queue,
            "version": version,
            "action": action,
            "appointment_id": appointment_id,
            "entry": public_entry if kind == CLINIC_QUEUE else entry,
        }
        # The client's frame, serialized here once: a group of a thousand sockets would otherwise encode
        # the same JSON a thousand times (QueueConsumer.queue_event sends this text as it is).
        message["text"] = event_frame(message)
        messages.append((group_name(queue), message))
    return messages


def event_frame(message: dict[str, Any]) -> str:
    """The websocket frame of a queue.event group message (the protocol in scheduling.consumers)."""
    return json.dumps(
        {
            "type": "event",
            "queue": message["queue"],
            "version": message["version"],
            "action": message["action"],
            "appointment_id": message["appointment_id"],
            "entry": message["entry"],
        }
    )


def on_queue_event(
    *,
    appointment_id: int,
    action: str,
    versions: dict[str, int],
    entry: dict[str, Any] | None = None,
    public_entry: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Event handler: pass a committed change on to the sockets of each queue it bumped."""
    messages = queue_messages(
        appointment_id=appointment_id,
        action=action,
        versions=versions,
        entry=entry,
        public_entry=public_entry,
    )
    if messages:
        send_group_messages(messages)


def on_queue_alert(
    *, appointment_id: int, doctor_id: int | None, clinic_id: int, alert: dict[str, Any], **_: Any
) -> None:
    """Event handler (QUEUE_ALERT): the alert to the doctor's queue socket, and to the clinic's (the
    nurses' triage page and the waiting room) without the patient's name, as every clinic message is."""
    messages: list[tuple[str, dict[str, Any]]] = []
    if doctor_id is not None:
        doctor_queue = queue_name(DOCTOR_QUEUE, doctor_id)
        messages.append(
            (
                group_name(doctor_queue),
                {
                    "type": "queue.alert",
                    "queue": doctor_queue,
                    "appointment_id": appointment_id,
                    "alert": alert,
                },
            )
        )
    clinic_queue = queue_name(CLINIC_QUEUE, clinic_id)
    public = {key: value for key, value in alert.items() if key != "patient"}
    messages.append(
        (
            group_name(clinic_queue),
            {"type": "queue.alert", "queue": clinic_queue, "appointment_id": appointment_id, "alert": public},
        )
    )
    send_group_messages(messages)


def send_group_messages(messages: list[tuple[str, dict[str, Any]]]) -> None:
    # Through opd.core's one door for sync sends: from a request thread of `make run`'s server it is
    # handed to the server's event loop (the in-memory layer's queues live there).
    group_send_many(messages)
