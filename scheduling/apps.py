from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core import events

        from . import realtime

        # Live screens: every queue change (and a booking that changes today) goes out through the
        # channel layer once it has committed.
        events.subscribe(events.QUEUE_CHANGED, realtime.on_queue_changed)
        events.subscribe(events.APPOINTMENT_BOOKED, realtime.on_booked)
        events.subscribe(events.APPOINTMENT_CANCELLED, realtime.on_cancelled)
        events.subscribe(events.APPOINTMENT_RESCHEDULED, realtime.on_rescheduled)
