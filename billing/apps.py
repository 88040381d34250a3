from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Fees, invoices, payments, refunds and the desk's cash-up. Stands above consultations and
    scheduling (it reads appointments and hears of check-ins and completions through their events) and
    below analytics (which reads revenue from it)."""

    name = "billing"
    verbose_name = "Fees and payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import subscribers

        subscribers.subscribe()
