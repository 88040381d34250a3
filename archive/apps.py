from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    """Archival and restore of old records: it reads every clinical app, and none of them knows it."""

    name = "archive"
    verbose_name = "Archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opd.core.services.encryption import register_rotation_hook

        from .services import archive_encryption_rotate

        # opd.core's rotate_keys cannot import this app: the archive hands it its copies to re-encrypt.
        register_rotation_hook("archived copies", archive_encryption_rotate)
