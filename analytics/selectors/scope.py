"""Whose statistics: the scope of a user (or of a scheduled report) and the range of days asked for.

Admins see their organization's clinics, staff the clinics they work at, doctors their own figures
only (at the clinics they work at), superusers everything; patients are refused. Filters naming a
clinic, department or doctor outside that scope answer 404 naming the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from opd.core.dates import OUT_OF_RANGE, day_in_range
from opd.core.errors import NotFound, PermissionDenied, ValidationFailed
from opd.core.models import Clinic, Department, Role, User
from opd.core.tenancy import clinic_ids_for
from scheduling.models import Doctor
from scheduling.selectors import doctors_for

UTC = dt.UTC
MAX_DAYS = 1100  # three years a request; more is a report, not a page
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class StatsScope:
    """Whose statistics: these clinics (each with its zone), optionally one department and one doctor."""

    clinics: tuple[tuple[int, str], ...]  # (clinic id, time zone), sorted by id
    department_id: int | None = None
    doctor_id: int | None = None
    # The clinics' organizations: redundant with the clinics, but it lets indexes that start with the
    # organization serve the query (and keeps the tenant in every WHERE clause).
    organization_ids: tuple[int, ...] = ()

    @property
    def clinic_ids(self) -> list[int]:
        return [clinic_id for clinic_id, _ in self.clinics]

    @property
    def zones(self) -> dict[int, ZoneInfo]:
        return {clinic_id: ZoneInfo(zone) for clinic_id, zone in self.clinics}

    @property
    def token(self) -> str:
        raw = f"{self.clinic_ids}|{self.department_id}|{self.doctor_id}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def utc_bounds(self, date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The UTC instants that hold every clinic's [date_from 00:00, date_to + 1 00:00) local."""
        after = date_to + dt.timedelta(days=1)
        zones = set(self.zones.values()) or {ZoneInfo("UTC")}
        lo = min(dt.datetime.combine(date_from, dt.time.min, tzinfo=z) for z in zones).astimezone(UTC)
        hi = max(dt.datetime.combine(after, dt.time.min, tzinfo=z) for z in zones).astimezone(UTC)
        return lo, hi

    def appointment_q(self) -> Q:
        """Appointments and slots in scope (both have organization, clinic, department and doctor)."""
        q = Q(organization_id__in=self.organization_ids, clinic_id__in=self.clinic_ids)
        if self.department_id is not None:
            q &= Q(department_id=self.department_id)
        if self.doctor_id is not None:
            q &= Q(doctor_id=self.doctor_id)
        return q


def _scope_from_clinics(
    clinics: Iterable[Clinic], department_id: int | None, doctor_id: int | None
) -> StatsScope:
    clinics = list(clinics)
    return StatsScope(
        clinics=tuple(sorted((c.pk, c.time_zone) for c in clinics)),
        department_id=department_id,
        doctor_id=doctor_id,
        organization_ids=tuple(sorted({c.organization_id for c in clinics})),
    )


def resolve_scope(
    user: User,
    *,
    clinic_ids: list[int] | None = None,
    department_id: int | None = None,
    doctor_id: int | None = None,
) -> StatsScope:
    """The statistics scope of `user` narrowed by the filters. Unknown or foreign ids: 404 naming the field."""
    if not user.is_authenticated or (user.role == Role.PATIENT and not user.is_superuser):
        raise PermissionDenied("Statistics are for clinic staff.")
    visible = clinic_ids_for(user)  # None: every clinic (superuser)
    clinics = Clinic.objects.all() if visible is None else Clinic.objects.filter(pk__in=visible)

    if user.role == Role.DOCTOR and not user.is_superuser:
        own = Doctor.objects.filter(user=user).values_list("pk", flat=True).first()
        if own is None:
            raise PermissionDenied("Only doctors with a profile have statistics.")
        if doctor_id is not None and doctor_id != own:
            # Doctors see their own figures only; another doctor is as unknown as a foreign one.
            raise NotFound("Unknown doctor.", fields={"doctor": "Unknown doctor."})
        doctor_id = own
    elif doctor_id is not None and not doctors_for(user).filter(pk=doctor_id).exists():
        raise NotFound("Unknown doctor.", fields={"doctor": "Unknown doctor."})

    if clinic_ids:
        wanted = set(clinic_ids)
        found = list(clinics.filter(pk__in=wanted))
        if len(found) != len(wanted):
            raise NotFound("Unknown clinic.", fields={"clinic": "Unknown clinic."})
        clinics_list = found
    else:
        clinics_list = list(clinics)

    if department_id is not None:
        department = Department.objects.filter(pk=department_id, clinic__in=clinics).first()
        if department is None:
            raise NotFound("Unknown department.", fields={"department": "Unknown department."})
        clinics_list = [c for c in clinics_list if c.pk == department.clinic_id]
    return _scope_from_clinics(clinics_list, department_id, doctor_id)


def scope_for_organization(
    organization_id: int,
    *,
    clinic_ids: list[int] | None = None,
    department_id: int | None = None,
    doctor_id: int | None = None,
) -> StatsScope:
    """A scheduled report's scope: the organization's clinics, narrowed like resolve_scope."""
    clinics = Clinic.objects.filter(organization_id=organization_id)
    if clinic_ids:
        clinics = clinics.filter(pk__in=clinic_ids)
    clinics_list = list(clinics)
    if department_id is not None:
        clinics_list = [
            c for c in clinics_list if Department.objects.filter(pk=department_id, clinic=c).exists()
        ]
    return _scope_from_clinics(clinics_list, department_id, doctor_id)


def validate_range(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.date, dt.date]:
    for name, day in (("date_from", date_from), ("date_to", date_to)):
        # Before any arithmetic: a day near year 1 or 9999 overflows when a margin is added.
        if day is not None and not day_in_range(day):
            raise ValidationFailed(f"{name}: {OUT_OF_RANGE}", fields={name: OUT_OF_RANGE})
    date_to = date_to or timezone.localdate()
    date_from = date_from or date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise ValidationFailed(
            "date_from is after date_to.", fields={"date_from": "Must be on or before date_to."}
        )
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            f"At most {MAX_DAYS} days at a time.", fields={"date_from": f"At most {MAX_DAYS} days."}
        )
    return date_from, date_to


def days_between(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    return [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]


def day_runs(days: list[dt.date], *, max_runs: int | None = None) -> list[tuple[dt.date, dt.date]]:
    """Ascending days as runs of consecutive days [(first, last)]; one run spanning them all when there
    are more than `max_runs`."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and runs[-1][1] == day - dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    if max_runs is not None and len(runs) > max_runs:
        return [(runs[0][0], runs[-1][1])]
    return runs
