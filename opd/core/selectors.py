"""Reads of opd.core that more than one door shares (the tenancy scopes live in opd.core.tenancy)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, User


def live_api_tokens_for(user: User) -> QuerySet[ApiToken]:
    """The person's own tokens that still open the API: not revoked, not expired. Nobody sees another
    person's tokens, not even an admin (an admin ends them by deactivating or resetting a password)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now())
