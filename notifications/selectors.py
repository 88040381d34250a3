"""Notification reads scoped to the requesting user."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from opd.core.models import Role, User
from opd.core.tenancy import clinic_ids_for

from .models import Notification


def scope_notifications(qs: QuerySet[Notification], user: User) -> QuerySet[Notification]:
    """Admins: their organization's messages. Staff: those of the clinics they work at, and their own.
    Doctors and patients: only messages addressed to them (a patient's through their record)."""
    if user.is_superuser:
        return qs
    qs = qs.filter(organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    own = Q(user=user) | Q(patient__user=user)
    if user.role == Role.ADMIN:
        return qs
    if user.role == Role.STAFF:
        return qs.filter(Q(clinic_id__in=clinic_ids_for(user)) | own)
    return qs.filter(own)


def notifications_for(user: User) -> QuerySet[Notification]:
    """Messages a user may see (superusers: all)."""
    return scope_notifications(Notification.objects.all(), user)
