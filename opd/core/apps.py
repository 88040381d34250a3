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

        # A cached API token check ends with the commit that changes a row it read (opd.core.token_cache).
        from django.db.models.signals import post_delete, post_save

        from . import token_cache
        from .models import ApiToken, Organization, User

        post_save.connect(token_cache.on_token_changed, sender=ApiToken, dispatch_uid="token-cache-token")
        post_delete.connect(
            token_cache.on_token_changed, sender=ApiToken, dispatch_uid="token-cache-token-del"
        )
        post_save.connect(token_cache.on_user_changed, sender=User, dispatch_uid="token-cache-user")
        post_save.connect(
            token_cache.on_organization_changed, sender=Organization, dispatch_uid="token-cache-organization"
        )
        post_delete.connect(
            token_cache.on_organization_changed,
            sender=Organization,
            dispatch_uid="token-cache-organization-del",
        )
