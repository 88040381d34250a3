"""Notification reads scoped to the requesting user."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from opd.core.models import Role, User
from opd.core.tenancy import clinic_ids_for

from .models import Channel, Notification, Status


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


def inbox_for(user: User) -> QuerySet[Notification]:
    """A user's in-app messages that have been delivered, newest first. Reminders wait in the outbox
    (queued) until their time, so they appear here when they are sent, not when they are planned."""
    return Notification.objects.filter(user=user, channel=Channel.IN_APP, status=Status.SENT).order_by(
        "-sent_at", "-id"
    )


def unread_count(user: User) -> int:
    return inbox_for(user).filter(read_at__isnull=True).count()
