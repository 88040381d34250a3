"""What every page's navigation shows a signed-in patient: the unread count of their inbox."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from notifications.selectors import unread_count
from opd.core.models import Role


def inbox(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.role != Role.PATIENT:
        return {}
    # Lazy: counted only on pages that render the navigation.
    return {
        "inbox_unread": SimpleLazyObject(lambda: unread_count(user)),
        "inbox_ws_base": settings.WEBSOCKET_BASE_URL,
    }
