"""A consultation's writes, pushed to its doctor's live queue sockets so every open page of the record
(a second tab, another device) knows its copy is stale.

Subscribed in ConsultationsConfig.ready() to CONSULTATION_CHANGED, published by every write to a draft
and by its completion (services.common.bump_version) and delivered after commit. The message carries
ids, the new version and the status, never clinical content: staff who follow the doctor's queue share
the group, and they do not read notes. scheduling.consumers.QueueConsumer.consultation_changed passes it
on to doctors' queue sockets as
    {"type": "consultation", "consultation_id": 9, "appointment_id": 1234, "version": 5,
     "status": "draft"}
and static/js/consultation.js reloads the panel (no unsaved edits) or says another tab changed it.
"""

from __future__ import annotations

from typing import Any

from scheduling.realtime import group_name, send_group_messages
from scheduling.selectors import DOCTOR_QUEUE, queue_name


def consultation_message(
    *, consultation_id: int, appointment_id: int, doctor_id: int, version: int, status: str
) -> tuple[str, dict[str, Any]]:
    return (
        group_name(queue_name(DOCTOR_QUEUE, doctor_id)),
        {
            "type": "consultation.changed",
            "consultation_id": consultation_id,
            "appointment_id": appointment_id,
            "version": version,
            "status": status,
        },
    )


def on_consultation_changed(**payload: Any) -> None:
    send_group_messages([consultation_message(**payload)])
