"""Reads of opd.core that more than one door shares (the tenancy scopes live in opd.core.tenancy)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, AuditEvent, Role, User

# The access-log action of a stated reason to open a record without a care relationship.
BREAK_GLASS = "record.break_glass"


def live_api_tokens_for(user: User) -> QuerySet[ApiToken]:
    """The person's own tokens that still open the API: not revoked, not expired. Nobody sees another
    person's tokens, not even an admin (an admin ends them by deactivating or resetting a password)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now())


def flagged_accesses_for(user: User) -> QuerySet[AuditEvent]:
    """Break-the-glass rows of the administrator's organization (every organization for a superuser),
    for review. Nobody else reviews them: a clinician does not audit their colleagues here."""
    qs = AuditEvent.objects.filter(action=BREAK_GLASS)
    if user.is_superuser:
        return qs
    if user.role != Role.ADMIN or user.organization_id is None:
        return qs.none()
    return qs.filter(organization_id=user.organization_id)
