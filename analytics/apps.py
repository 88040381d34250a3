from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core import events

        from . import caching

        # Statistics of a day are recomputed once something on that day changed.
        for event in (
            events.APPOINTMENT_BOOKED,
            events.APPOINTMENT_CANCELLED,
            events.APPOINTMENT_RESCHEDULED,
            events.QUEUE_CHANGED,
        ):
            events.subscribe(event, caching.on_appointment_event)
        events.subscribe(events.CLINICAL_DAY_CHANGED, caching.on_clinical_day_changed)
