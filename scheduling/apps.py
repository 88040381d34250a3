from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core import events

        from . import realtime

        # Live screens: every queue change, and a booking, cancellation or move that concerns today,
        # goes out through the channel layer once it has committed (one event per change, with versions).
        for event in events.QUEUE_EVENTS:
            events.subscribe(event, realtime.on_queue_event)
        events.subscribe(events.QUEUE_ALERT, realtime.on_queue_alert)

        # Slots are planned in clinic local time: a clinic's new time zone re-plans them, or is refused
        # while booked appointments would move (inside opd.core's clinic_update transaction).
        from opd.core.services import time_zone_planner_register

        from .services import slots_replan_for_time_zone

        time_zone_planner_register(slots_replan_for_time_zone)

        # A doctor's clinical access follows their profile's approval (opd.core.tenancy checks it on every
        # request through this check; scheduling owns the profile).
        from opd.core.tenancy import clinical_standing_register

        from .selectors import doctor_in_good_standing

        clinical_standing_register(doctor_in_good_standing)
