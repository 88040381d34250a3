"""Deduplication keys of appointment messages (unique in Notification.dedup_key).

    appt:<id>:booking_confirmation:<channel>
    appt:<id>:cancellation:<channel>
    appt:<id>:v<reschedule_count>:reschedule:<channel>
    appt:<id>:v<reschedule_count>:reminder:<lead minutes>:<channel>
    <any of these>:resend:<n>

The version (the appointment's reschedule_count) makes the reminders of a moved appointment new messages,
and tells a reminder written for an earlier time from a current one.
"""

from __future__ import annotations


def appointment_key(appointment_id: int, name: str) -> str:
    return f"appt:{appointment_id}:{name}"


def version_prefix(appointment_id: int, reschedule_count: int) -> str:
    return f"appt:{appointment_id}:v{reschedule_count}:"
