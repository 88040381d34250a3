from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "opd.core"
    label = "core"
    verbose_name = "Organization and access"
    default_auto_field = "django.db.models.BigAutoField"
