"""Every write of the notifications app. Doors (event subscribers, tasks, API, admin, commands) call these."""

from .appointments import (
    appointment_notify_booked,
    appointment_notify_cancelled,
    appointment_notify_rescheduled,
    recipients_for,
    reminders_cancel_for_appointment,
    reminders_plan_for_appointment,
)
from .delivery import (
    NOTIFICATIONS_DISPATCHED,
    SendOutcome,
    new_notification,
    notification_enqueue,
    notification_resend,
    notification_send,
    notifications_dispatch_due,
    notifications_enqueue,
)
from .inbox import NOTIFICATIONS_READ, notification_mark_read, notifications_mark_all_read
from .preferences import clinic_notification_settings_set, contact_preference_set

__all__ = [
    "NOTIFICATIONS_DISPATCHED",
    "NOTIFICATIONS_READ",
    "SendOutcome",
    "appointment_notify_booked",
    "appointment_notify_cancelled",
    "appointment_notify_rescheduled",
    "clinic_notification_settings_set",
    "contact_preference_set",
    "new_notification",
    "notification_enqueue",
    "notification_mark_read",
    "notification_resend",
    "notification_send",
    "notifications_dispatch_due",
    "notifications_enqueue",
    "notifications_mark_all_read",
    "recipients_for",
    "reminders_cancel_for_appointment",
    "reminders_plan_for_appointment",
]
