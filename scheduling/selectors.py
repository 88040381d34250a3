"""Scheduling reads scoped to the requesting user. Views and other doors never query these models unscoped.

Superusers see everything; admins their organization; staff and doctors the clinics they are members of
(opd.core.tenancy). Patients see the open, future slots of their organization's active clinics, so they
can book, and only their own appointments.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from opd.core.models import Role, User
from opd.core.tenancy import clinic_ids_for, restrict_to_clinics

from .models import Appointment, ApprovalStatus, Doctor, Slot


def slots_for(user: User, *, include_closed: bool = False) -> QuerySet[Slot]:
    """Slots the user may see.

    For patients the list is what they could book: active, future slots of approved doctors in active
    departments. `include_closed=True` keeps the tenant boundary but not that filter, so a booking door can
    say why a past or withdrawn slot cannot be booked (400) instead of pretending it does not exist (404).
    """
    qs = Slot.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        qs = qs.filter(organization_id=user.organization_id, clinic__is_active=True)
        if not include_closed:
            qs = qs.filter(
                is_active=True,
                start__gt=timezone.now(),
                doctor__approval_status=ApprovalStatus.APPROVED,
                department__is_active=True,
            )
        return qs
    return restrict_to_clinics(qs, user)


def appointments_for(user: User) -> QuerySet[Appointment]:
    """Appointments the user may see: patients their own, everyone else those at their clinics."""
    qs = Appointment.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        return qs.filter(patient__user=user, organization_id=user.organization_id)
    return restrict_to_clinics(qs, user)


def bookable_slot_q(now: dt.datetime) -> Q:
    """A slot someone could book now: offered, in the future, a seat left, at an open clinic and
    department, with an approved doctor. The booking service re-checks it under the slot's lock."""
    return Q(
        is_active=True,
        start__gt=now,
        booked_count__lt=F("capacity"),
        doctor__approval_status=ApprovalStatus.APPROVED,
        department__is_active=True,
        clinic__is_active=True,
    )


def doctors_for(user: User) -> QuerySet[Doctor]:
    """Doctors a user may see. Nothing crosses organizations.

    Admins: every doctor of their organization (they approve them). Staff and doctors: doctors with a
    department in a clinic they work at (a doctor also sees themself). Patients: approved doctors.
    """
    qs = Doctor.objects.all()
    if user.is_superuser:
        return qs
    qs = qs.filter(organization_id=user.organization_id)
    if user.role == Role.ADMIN:
        return qs
    if user.role in (Role.STAFF, Role.DOCTOR):
        # A subquery rather than a join, so a doctor in two of the user's departments is listed once.
        works_here = Q(
            pk__in=Doctor.departments.through.objects.filter(
                department__clinic_id__in=clinic_ids_for(user)
            ).values("doctor_id")
        )
        if user.role == Role.DOCTOR:
            works_here |= Q(user_id=user.pk)
        return qs.filter(works_here)
    return qs.filter(approval_status=ApprovalStatus.APPROVED)
