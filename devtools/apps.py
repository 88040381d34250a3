from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Demo and scale seeding, the benchmark harness and its ceiling endpoint. It may import any app and
    no app imports it; production settings do not install it."""

    name = "devtools"
    verbose_name = "Developer tools"
    default_auto_field = "django.db.models.BigAutoField"
