from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The patients' web portal: a door at the top of the dependency order (it reads scheduling,
    consultations and notifications), so it lives beside the project's URL configuration."""

    name = "portal"
    label = "portal"
    verbose_name = "Patient portal"
    default_auto_field = "django.db.models.BigAutoField"
