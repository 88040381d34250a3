from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    """Archival and restore of old records: it reads every clinical app, and none of them knows it."""

    name = "archive"
    verbose_name = "Archive"
    default_auto_field = "django.db.models.BigAutoField"
