"""The day's queue: check-in with a token, then start, complete, no-show, priority.

Every transition locks the appointment row, re-checks its state, then writes with update_fields;
the queue change is published after commit (opd.core.events.QUEUE_CHANGED) for live screens.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.db import next_in_sequence, retry_on_deadlock
from opd.core.errors import Conflict, PermissionDenied
from opd.core.models import Role, User

from ..models import Appointment, AppointmentStatus, TokenCounter


def _lock(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_for_update().select_related("clinic").get(pk=appointment.pk)


def _refuse_state(appt: Appointment, verb: str) -> Conflict:
    return Conflict(
        f"An appointment that is {appt.get_status_display().lower()} cannot be {verb}.", code="invalid_state"
    )


def check_doctor_owns(actor: User | None, appt: Appointment) -> None:
    """A doctor acts only on their own appointments; staff and admins on any their door let them reach."""
    if (
        actor is not None
        and not actor.is_superuser
        and actor.role == Role.DOCTOR
        and appt.doctor.user_id != actor.pk
    ):
        raise PermissionDenied("This appointment is assigned to another doctor.")


def _changed(appt: Appointment, action: str, actor: User | None, **data) -> None:
    audit(actor=actor, action=f"appointment.{action}", obj=appt, organization_id=appt.organization_id, **data)
    events.publish(
        events.QUEUE_CHANGED,
        appointment_id=appt.pk,
        doctor_id=appt.doctor_id,
        clinic_id=appt.clinic_id,
        department_id=appt.department_id,
        action=action,
    )


@retry_on_deadlock
def appointment_check_in(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """Reception checks a booked patient in and issues the next token of the department's day.

    Allowed from the clinic's check-in window before the start until the end. Locks the appointment
    row, then the department's TokenCounter row (so tokens are unique and never reused)."""
    now = now or timezone.now()
    with transaction.atomic():
        appt = _lock(appointment)
        if appt.status != AppointmentStatus.BOOKED:
            raise _refuse_state(appt, "checked in")
        opens = appt.start - dt.timedelta(minutes=appt.clinic.checkin_opens_minutes)
        if now < opens:
            raise Conflict(
                f"Check-in opens at {opens.astimezone(appt.clinic.tz):%H:%M} ({appt.clinic.time_zone}), "
                f"{appt.clinic.checkin_opens_minutes} minutes before the appointment.",
                code="checkin_not_open",
            )
        if now >= appt.end:
            raise Conflict(
                "The appointment has ended; it can no longer be checked in.", code="checkin_closed"
            )
        day = timezone.localtime(now, appt.clinic.tz).date()
        appt.token_number = next_in_sequence(TokenCounter, department_id=appt.department_id, date=day)
        appt.token_date = day
        appt.status = AppointmentStatus.CHECKED_IN
        appt.checked_in_at = now
        appt.save(update_fields=["token_number", "token_date", "status", "checked_in_at", "updated_at"])
        _changed(appt, "checked_in", actor, token=appt.token_number)
    return appt


@retry_on_deadlock
def appointment_start(*, actor: User | None, appointment: Appointment) -> Appointment:
    """The doctor starts seeing a checked-in patient. Starting one already in consultation is a no-op."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if appt.status == AppointmentStatus.IN_CONSULTATION:
            return appt
        if appt.status != AppointmentStatus.CHECKED_IN:
            raise _refuse_state(appt, "started")
        appt.status = AppointmentStatus.IN_CONSULTATION
        appt.started_at = timezone.now()
        appt.save(update_fields=["status", "started_at", "updated_at"])
        _changed(appt, "started", actor)
    return appt


@retry_on_deadlock
def appointment_complete(*, actor: User | None, appointment: Appointment) -> Appointment:
    """Finish a consultation. Call it inside the consultation's own transaction to complete both at once."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if appt.status != AppointmentStatus.IN_CONSULTATION:
            raise _refuse_state(appt, "completed")
        appt.status = AppointmentStatus.COMPLETED
        appt.completed_at = timezone.now()
        appt.save(update_fields=["status", "completed_at", "updated_at"])
        _changed(appt, "completed", actor)
    return appt


@retry_on_deadlock
def appointment_mark_no_show(*, actor: User | None, appointment: Appointment) -> Appointment:
    """A patient who did not come (or left before being seen). The seat stays counted: the time has passed."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if appt.status not in (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN):
            raise _refuse_state(appt, "marked as no-show")
        appt.status = AppointmentStatus.NO_SHOW
        appt.no_show_at = timezone.now()
        appt.save(update_fields=["status", "no_show_at", "updated_at"])
        _changed(appt, "no_show", actor)
    return appt


@retry_on_deadlock
def appointment_set_priority(
    *, actor: User | None, appointment: Appointment, is_priority: bool, reason: str = ""
) -> Appointment:
    """Flag (or unflag) a patient to be seen first: NEWS2 medium/high, or a staff decision."""
    with transaction.atomic():
        appt = _lock(appointment)
        if appt.is_priority == is_priority and appt.priority_reason == reason:
            return appt
        appt.is_priority = is_priority
        appt.priority_reason = reason if is_priority else ""
        appt.save(update_fields=["is_priority", "priority_reason", "updated_at"])
        _changed(appt, "priority", actor, is_priority=is_priority, reason=reason)
    return appt
