from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Scheduling sits below this app and cannot call it: it publishes, we subscribe. Events arrive
        # after the booking's transaction has committed, carrying ids.
        from opd.core import events

        from .services import (
            appointment_booked_queue_messages,
            appointment_notify_cancelled,
            appointment_notify_rescheduled,
        )

        # A booking's messages are planned by a worker (the hot path answers sooner); cancellations and
        # moves are rare and plan theirs at once, so their reminders stop before anything else can send.
        events.subscribe(events.APPOINTMENT_BOOKED, appointment_booked_queue_messages)
        events.subscribe(events.APPOINTMENT_CANCELLED, appointment_notify_cancelled)
        events.subscribe(events.APPOINTMENT_RESCHEDULED, appointment_notify_rescheduled)
