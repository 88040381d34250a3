"""Doctors' weekly availability, its exceptions, and approval. Each change re-plans the doctor's slots."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit, changes
from opd.core.errors import Conflict, ValidationFailed
from opd.core.models import Department, User
from opd.core.services import validate_model

from ..models import ApprovalStatus, AvailabilityException, AvailabilityRule, Doctor, ExceptionKind
from .slots import slots_generate

RULE_FIELDS = (
    "department",
    "weekday",
    "start_time",
    "end_time",
    "slot_minutes",
    "capacity",
    "valid_from",
    "valid_to",
)


def _check_department(doctor: Doctor, department: Department | None, field: str = "department") -> None:
    if department is None:
        return
    if not doctor.departments.filter(pk=department.pk).exists():
        raise ValidationFailed(
            "The doctor does not work in this department.",
            fields={field: "The doctor is not a member of this department."},
        )


def _check_times(start: dt.time | None, end: dt.time | None, slot_minutes: int | None) -> None:
    """Named checks before the model's own validation, so the user reads which field is wrong
    rather than the name of a database constraint."""
    if start is not None and end is not None and end <= start:
        raise ValidationFailed(
            "The session must end after it starts.", fields={"end_time": "Must be after the start time."}
        )
    if start is not None and end is not None and slot_minutes:
        _check_session_length(start, end, slot_minutes)


def _check_validity(valid_from: dt.date | None, valid_to: dt.date | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise ValidationFailed(
            "The rule ends before it starts.", fields={"valid_to": "Must not be before valid_from."}
        )


def _check_session_length(start: dt.time, end: dt.time, slot_minutes: int) -> None:
    minutes = (
        dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
    ).total_seconds() / 60
    if minutes < slot_minutes:
        raise ValidationFailed(
            "The session is shorter than one slot.", fields={"slot_minutes": "Longer than the session."}
        )


def _check_rule_overlap(rule: AvailabilityRule) -> None:
    """Two weekly sessions of one doctor must not overlap on any date both are valid."""
    clash = (
        AvailabilityRule.objects.filter(
            doctor_id=rule.doctor_id,
            weekday=rule.weekday,
            start_time__lt=rule.end_time,
            end_time__gt=rule.start_time,
        )
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=rule.valid_from))
        .exclude(pk=rule.pk)
    )
    if rule.valid_to is not None:
        clash = clash.filter(valid_from__lte=rule.valid_to)
    other = clash.first()
    if other:
        raise Conflict(
            f"This overlaps the doctor's existing session {other} (from {other.valid_from}).",
            fields={"start_time": "Overlaps another session."},
            code="overlap",
        )


def _replan(doctor: Doctor) -> None:
    slots_generate(doctors=Doctor.objects.filter(pk=doctor.pk))


def availability_rule_create(*, actor: User | None, doctor: Doctor, **fields: Any) -> AvailabilityRule:
    fields.setdefault("valid_from", timezone.localdate())
    rule = AvailabilityRule(doctor=doctor, **fields)
    _check_times(rule.start_time, rule.end_time, rule.slot_minutes)
    _check_validity(rule.valid_from, rule.valid_to)
    validate_model(rule)
    _check_department(doctor, rule.department)
    with transaction.atomic():
        Doctor.objects.select_for_update().get(pk=doctor.pk)  # serializes edits of one doctor's schedule
        _check_rule_overlap(rule)
        rule.save()
        audit(actor=actor, action="availability.rule_added", obj=rule, organization_id=doctor.organization_id)
        _replan(doctor)
    return rule


def availability_rule_update(
    *, actor: User | None, rule: AvailabilityRule, **fields: Any
) -> AvailabilityRule:
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
    # Edit a fresh copy, so the caller's instance still shows what is stored if this fails.
    rule = AvailabilityRule.objects.get(pk=rule.pk)
    before = {name: getattr(rule, name) for name in fields}
    for name, value in fields.items():
        setattr(rule, name, value)
    _check_times(rule.start_time, rule.end_time, rule.slot_minutes)
    _check_validity(rule.valid_from, rule.valid_to)
    validate_model(rule)
    _check_department(rule.doctor, rule.department)
    with transaction.atomic():
        Doctor.objects.select_for_update().get(pk=rule.doctor_id)
        _check_rule_overlap(rule)
        rule.save()
        audit(
            actor=actor,
            action="availability.rule_changed",
            obj=rule,
            organization_id=rule.doctor.organization_id,
            fields=sorted(fields),
            changes=changes(before, rule, sorted(fields)),
        )
        _replan(rule.doctor)
    return rule


def availability_rule_delete(*, actor: User | None, rule: AvailabilityRule) -> None:
    """Remove a weekly session. Its future free slots close; booked appointments stay as they are."""
    doctor = rule.doctor
    with transaction.atomic():
        Doctor.objects.select_for_update().get(pk=doctor.pk)
        audit(
            actor=actor, action="availability.rule_removed", obj=rule, organization_id=doctor.organization_id
        )
        rule.delete()
        _replan(doctor)


def availability_exception_create(
    *, actor: User | None, doctor: Doctor, **fields: Any
) -> AvailabilityException:
    exc = AvailabilityException(doctor=doctor, **fields)
    if (exc.start_time is None) != (exc.end_time is None):
        raise ValidationFailed(
            "Give both times or neither.", fields={"end_time": "Give both times or neither."}
        )
    if exc.kind == ExceptionKind.EXTRA:
        if exc.department_id is None:
            raise ValidationFailed(
                "An extra session needs a department.",
                fields={"department": "Required for an extra session."},
            )
        if exc.start_time is None:
            raise ValidationFailed(
                "An extra session needs start and end times.",
                fields={"start_time": "Required for an extra session."},
            )
    _check_times(exc.start_time, exc.end_time, exc.slot_minutes if exc.kind == ExceptionKind.EXTRA else None)
    validate_model(exc)
    if exc.date < timezone.localdate() - dt.timedelta(days=1):
        raise ValidationFailed("The date is in the past.", fields={"date": "Choose today or a later date."})
    if exc.kind == ExceptionKind.EXTRA:
        _check_department(doctor, exc.department)
    with transaction.atomic():
        Doctor.objects.select_for_update().get(pk=doctor.pk)
        exc.save()
        audit(
            actor=actor,
            action=f"availability.{exc.kind}_added",
            obj=exc,
            organization_id=doctor.organization_id,
        )
        _replan(doctor)
    return exc


def availability_exception_delete(*, actor: User | None, exception: AvailabilityException) -> None:
    doctor = exception.doctor
    with transaction.atomic():
        Doctor.objects.select_for_update().get(pk=doctor.pk)
        audit(
            actor=actor,
            action=f"availability.{exception.kind}_removed",
            obj=exception,
            organization_id=doctor.organization_id,
        )
        exception.delete()
        _replan(doctor)


def doctor_set_approval(*, actor: User | None, doctor: Doctor, status: str) -> Doctor:
    """Approve or suspend. Approval opens slots from the doctor's availability; suspension closes the
    free ones (existing appointments stay for staff to handle)."""
    if status not in ApprovalStatus.values:
        raise ValidationFailed("Unknown status.", fields={"approval_status": "Unknown status."})
    with transaction.atomic():
        locked = Doctor.objects.select_for_update().get(pk=doctor.pk)
        if locked.approval_status == status:
            return locked
        locked.approval_status = status
        locked.approved_at = timezone.now() if status == ApprovalStatus.APPROVED else locked.approved_at
        locked.save(update_fields=["approval_status", "approved_at", "updated_at"])
        audit(actor=actor, action=f"doctor.{status}", obj=locked, organization_id=locked.organization_id)
        _replan(locked)
        if status != ApprovalStatus.APPROVED:
            events.publish(events.ACCESS_REVOKED, user_id=locked.user_id, reason=status)
    doctor.approval_status, doctor.approved_at = locked.approval_status, locked.approved_at
    return doctor
