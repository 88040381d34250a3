from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core import events

        from . import realtime

        # Live screens: every queue change, and a booking, cancellation or move that concerns today,
        # goes out through the channel layer once it has committed (one event per change, with versions),
        # from the process's sender thread once the change has answered (in order: one thread per process).
        for event in events.QUEUE_EVENTS:
            events.subscribe(event, realtime.on_queue_event, after_response=True)
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

        # Patients' slot listings are answered from the cache until what they show changes. The booking
        # service's seat count and slot generation bump versions themselves (on commit, in the request,
        # not through the domain events, which may be delivered later); every save of a slot or of the
        # catalog around it (clinics, departments, doctors, their names) from any door, the admin
        # included, bumps one here, because a missed door would serve a stale listing.
        from django.db.models.signals import post_delete, post_save

        from opd.core.models import Clinic, Department, User

        from . import listing_cache
        from .models import Doctor, Slot

        post_save.connect(listing_cache.on_slot_saved, sender=Slot, dispatch_uid="slot-listing-slot")
        post_delete.connect(listing_cache.on_catalog_saved, sender=Slot, dispatch_uid="slot-listing-slot-del")
        for model in (Clinic, Department, Doctor):
            for signal in (post_save, post_delete):
                signal.connect(
                    listing_cache.on_catalog_saved,
                    sender=model,
                    dispatch_uid=f"slot-listing-{model.__name__}",
                )
        post_save.connect(listing_cache.on_user_saved, sender=User, dispatch_uid="slot-listing-user")
        # A process that dies between a booking's commit and its bump leaves the listing stale: the relay,
        # which then delivers the booking's event (the process never marked it), bumps it instead.
        for event in (
            events.APPOINTMENT_BOOKED,
            events.APPOINTMENT_CANCELLED,
            events.APPOINTMENT_RESCHEDULED,
        ):
            events.subscribe_redelivery(event, listing_cache.on_redelivered_appointment_event)
