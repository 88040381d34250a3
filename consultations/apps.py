from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "consultations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The queue's pages (scheduling, below this app) show each patient's latest NEWS2 and the
        # clinical response it asks for: registered here, so scheduling never imports consultations.
        from scheduling.selectors import queue_alert_source_register, queue_row_decorator_register

        from .triage_selectors import active_news2_alerts, decorate_with_news2

        queue_row_decorator_register(decorate_with_news2)
        # Every queue snapshot carries the NEWS2 alerts that hold now, so a page that (re)connects after
        # an alert was sent still shows it.
        queue_alert_source_register(active_news2_alerts)

        from opd.core import events
        from scheduling.services import appointment_completion_check_register

        from . import realtime
        from .services.consultations import check_appointment_completable

        # An appointment is completed only with its consultation (scheduling asks on every door).
        appointment_completion_check_register(check_appointment_completable)
        # A committed write to a consultation reaches the doctor's open pages (a second tab reloads).
        events.subscribe(events.CONSULTATION_CHANGED, realtime.on_consultation_changed)
