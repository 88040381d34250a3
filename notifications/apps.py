from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from patients.services import merge_mover_register

        from . import subscribers
        from .services.preferences import contact_preference_merge

        subscribers.subscribe()
        merge_mover_register("notifications.ContactPreference.patient", contact_preference_merge)
