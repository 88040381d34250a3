"""Materializing slots from weekly rules and exceptions, in each clinic's local time (DST-safe)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from opd.core.errors import ValidationFailed
from opd.core.models import Clinic, Department

from .. import listing_cache
from ..models import (
    ACTIVE_STATUSES,
    Appointment,
    ApprovalStatus,
    AvailabilityException,
    AvailabilityRule,
    Doctor,
    ExceptionKind,
    Slot,
)

UTC = dt.UTC


@dataclass
class GenerationReport:
    created: int = 0
    reactivated: int = 0
    deactivated: int = 0
    resized: int = 0
    doctors: int = 0
    kept_with_bookings: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Session:
    department_id: int
    clinic_id: int
    organization_id: int
    tz: ZoneInfo
    start: dt.time
    end: dt.time
    slot_minutes: int
    capacity: int


# A slot to have: (end_utc, session, local_date), keyed by its start_utc.
Wanted = tuple[dt.datetime, _Session, dt.date]


def local_to_utc(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime | None:
    """The UTC instant of a wall-clock time, or None when that wall-clock time does not exist
    (the hour skipped when clocks go forward). In the repeated hour the first occurrence is used."""
    local = dt.datetime.combine(day, at, tzinfo=tz)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return as_utc


def _sessions_for_day(
    day: dt.date,
    rules: list[AvailabilityRule],
    exceptions: list[AvailabilityException],
    departments: dict[int, Department],
) -> tuple[list[_Session], list[tuple[dt.time | None, dt.time | None]]]:
    def session(dept_id: int, start: dt.time, end: dt.time, minutes: int, capacity: int) -> _Session:
        dept = departments[dept_id]
        return _Session(
            dept_id,
            dept.clinic_id,
            dept.clinic.organization_id,
            dept.clinic.tz,
            start,
            end,
            minutes,
            capacity,
        )

    sessions = [
        session(r.department_id, r.start_time, r.end_time, r.slot_minutes, r.capacity)
        for r in rules
        if r.weekday == day.weekday() and r.valid_from <= day and (r.valid_to is None or day <= r.valid_to)
    ]
    leaves = []
    for exc in exceptions:
        if exc.date != day:
            continue
        if exc.kind == ExceptionKind.EXTRA:
            # An extra session always has its department and times (the model's check constraints).
            sessions.append(
                session(exc.department_id, exc.start_time, exc.end_time, exc.slot_minutes, exc.capacity)  # type: ignore[arg-type]
            )
        else:
            leaves.append((exc.start_time, exc.end_time))
    return sessions, leaves


def _slots_of_session(
    day: dt.date, s: _Session, leaves: list[tuple[dt.time | None, dt.time | None]]
) -> list[tuple[dt.datetime, dt.datetime, _Session]]:
    out = []
    length = dt.timedelta(minutes=s.slot_minutes)
    cursor = dt.datetime.combine(day, s.start)
    end = dt.datetime.combine(day, s.end)
    while cursor + length <= end:
        wall_start, wall_end = cursor.time(), (cursor + length).time()
        cursor += length
        # A leave has both times or neither (whole day).
        on_leave = any(start is None or (wall_start < end_ and start < wall_end) for start, end_ in leaves)  # type: ignore[operator]
        if on_leave:
            continue
        start_utc = local_to_utc(day, wall_start, s.tz)
        if start_utc is None:
            continue
        out.append((start_utc, start_utc + length, s))
    return out


def desired_slots(doctor: Doctor, first_day: dt.date, last_day: dt.date) -> dict[dt.datetime, Wanted]:
    """{start_utc: (end_utc, session, local_date)} for the doctor's rules and exceptions in the range."""
    rules = list(doctor.availability_rules.all())
    exceptions = list(doctor.availability_exceptions.filter(date__gte=first_day, date__lte=last_day))
    dept_ids = {r.department_id for r in rules} | {e.department_id for e in exceptions if e.department_id}
    departments = Department.objects.select_related("clinic").in_bulk(dept_ids)
    wanted: dict[dt.datetime, Wanted] = {}
    day = first_day
    while day <= last_day:
        sessions, leaves = _sessions_for_day(day, rules, exceptions, departments)
        for session in sessions:
            for start, end, s in _slots_of_session(day, session, leaves):
                # Two sessions that overlap must not make two slots that start together.
                wanted.setdefault(start, (end, s, day))
        day += dt.timedelta(days=1)
    return wanted


def slots_generate(
    *, days: int | None = None, start_date: dt.date | None = None, doctors: QuerySet[Doctor] | None = None
) -> GenerationReport:
    """Bring future slots in line with availability for `days` days from `start_date` (today, UTC).

    Creates missing slots, re-opens ones that came back, resizes capacity (never below bookings) and
    deactivates slots no longer offered. Never deletes a slot and never creates one twice: the unique
    (doctor, start) constraint makes concurrent runs safe. Slots that started already are left alone.
    """
    days = days if days is not None else settings.OPD_SLOT_HORIZON_DAYS
    now = timezone.now()
    # One day of margin each side covers every clinic time zone's idea of "today".
    first_day = (start_date or now.date()) - dt.timedelta(days=1)
    last_day = (start_date or now.date()) + dt.timedelta(days=days)
    report = GenerationReport()
    qs = doctors if doctors is not None else Doctor.objects.all()
    for doctor in qs.prefetch_related("availability_rules"):
        report.doctors += 1
        wanted: dict[dt.datetime, Wanted] = {}
        if doctor.approval_status == ApprovalStatus.APPROVED:
            wanted = {k: v for k, v in desired_slots(doctor, first_day, last_day).items() if k > now}
        _sync_doctor(doctor, wanted, first_day, last_day, now, report)
    return report


def _sync_doctor(
    doctor: Doctor,
    wanted: dict[dt.datetime, Wanted],
    first_day: dt.date,
    last_day: dt.date,
    now: dt.datetime,
    report: GenerationReport,
) -> None:
    with transaction.atomic():
        existing = {
            s.start: s
            for s in Slot.objects.filter(
                doctor=doctor, date__gte=first_day, date__lte=last_day, start__gt=now
            ).only("id", "start", "capacity", "booked_count", "is_active", "department_id")
        }
        new = [
            Slot(
                organization_id=s.organization_id,
                clinic_id=s.clinic_id,
                department_id=s.department_id,
                doctor=doctor,
                date=day,
                start=start,
                end=end,
                capacity=s.capacity,
            )
            for start, (end, s, day) in wanted.items()
            if start not in existing
        ]
        Slot.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        report.created += len(new)

        to_reactivate, to_deactivate = [], []
        resize: dict[int, list[int]] = defaultdict(list)
        for start, slot in existing.items():
            if start in wanted:
                capacity = max(wanted[start][1].capacity, slot.booked_count)
                if not slot.is_active:
                    to_reactivate.append(slot.pk)
                if capacity != slot.capacity:
                    resize[capacity].append(slot.pk)
            elif slot.is_active:
                to_deactivate.append(slot.pk)
                if slot.booked_count:
                    report.kept_with_bookings.append(slot.pk)
        report.reactivated += Slot.objects.filter(pk__in=to_reactivate).update(is_active=True)
        report.deactivated += Slot.objects.filter(pk__in=to_deactivate).update(is_active=False)
        for capacity, ids in resize.items():
            # Conditional on bookings, so a booking that landed meanwhile is never squeezed out.
            report.resized += Slot.objects.filter(pk__in=ids).update(
                capacity=Greatest(Value(capacity), F("booked_count"))
            )
        if new or to_reactivate or to_deactivate or resize:
            # Bulk writes send no signals: patients' cached listings hear of them here (on commit).
            listing_cache.catalog_changed()


def slots_replan_for_time_zone(*, clinic: Clinic, previous_time_zone: str) -> None:
    """opd.core's time-zone planner for slots (registered in SchedulingConfig.ready()): called by
    `clinic_update` inside its transaction, after the clinic's new zone is written.

    Weekly rules say "09:00" in clinic local time, so every future slot of the clinic moves with the
    zone. Booked appointments would move with them without anyone telling the patient: while any
    exist, the change is refused. Otherwise the old zone's future slots close and those no appointment
    ever pointed at are deleted (a slot a cancelled appointment points at stays, closed, as history);
    then slots are generated anew in the new zone.

    Closing comes before counting: each UPDATE takes the slot's row lock, the lock a booking takes too,
    so a booking racing this change either got its seat first (and is counted) or finds the slot closed.
    """
    now = timezone.now()
    future = Slot.objects.filter(clinic_id=clinic.pk, start__gt=now)
    future.filter(booked_count=0, is_active=True).update(is_active=False)
    listing_cache.catalog_changed()  # bulk writes send no signals (on commit; nothing if refused)
    booked = Appointment.objects.filter(
        clinic_id=clinic.pk, start__gt=now, status__in=ACTIVE_STATUSES
    ).count()
    if booked:
        noun = "appointment" if booked == 1 else "appointments"
        message = (
            f"{booked} booked future {noun} at this clinic would move to other times: cancel or "
            f"reschedule {'it' if booked == 1 else 'them'} before changing the time zone "
            f"(now {previous_time_zone})."
        )
        raise ValidationFailed(message, fields={"time_zone": message}, code="time_zone_in_use")
    referenced = Appointment.objects.filter(clinic_id=clinic.pk, slot__start__gt=now).values("slot_id")
    future.filter(booked_count=0).exclude(pk__in=referenced).delete()
    doctors = Doctor.objects.filter(
        Q(availability_rules__department__clinic_id=clinic.pk)
        | Q(availability_exceptions__department__clinic_id=clinic.pk)
    ).distinct()
    slots_generate(doctors=doctors)
