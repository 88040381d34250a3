from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Scheduling sits below this app and cannot call it: it publishes, we subscribe. Events arrive
        # after the booking's transaction has committed, carrying ids.
        from opd.core import events

        from .services import (
            appointment_notify_booked,
            appointment_notify_cancelled,
            appointment_notify_rescheduled,
        )

        events.subscribe(events.APPOINTMENT_BOOKED, appointment_notify_booked)
        events.subscribe(events.APPOINTMENT_CANCELLED, appointment_notify_cancelled)
        events.subscribe(events.APPOINTMENT_RESCHEDULED, appointment_notify_rescheduled)
