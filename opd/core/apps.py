from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "opd.core"
    label = "core"
    verbose_name = "Organization and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, crypto, events, realtime  # noqa: F401 (checks registers itself)

        crypto.connect_setting_changed()

        # Open websockets hear at once that a person's access narrowed, and re-check it.
        events.subscribe(events.ACCESS_REVOKED, realtime.on_access_revoked)
