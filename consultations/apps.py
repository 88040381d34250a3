from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "consultations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core import events
        from scheduling.services import appointment_completion_check_register

        from . import realtime
        from .services.consultations import check_appointment_completable

        # An appointment is completed only with its consultation (scheduling asks on every door).
        appointment_completion_check_register(check_appointment_completable)
        # A committed write to a consultation reaches the doctor's open pages (a second tab reloads).
        events.subscribe(events.CONSULTATION_CHANGED, realtime.on_consultation_changed)
