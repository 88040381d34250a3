"""Scheduling reads scoped to the requesting user. Views and other doors never query these models unscoped.

Superusers see everything; admins their organization; staff and doctors the clinics they are members of
(opd.core.tenancy). Patients see the open, future slots of their organization's active clinics, so they
can book, and only their own appointments.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from opd.core.errors import NotFound, PermissionDenied
from opd.core.models import Clinic, Role, User
from opd.core.tenancy import check_clinical_standing, clinic_ids_for, clinics_for, restrict_to_clinics
from patients.models import ENCRYPTED_FIELDS as PATIENT_ENCRYPTED_FIELDS

from .models import Appointment, AppointmentStatus, ApprovalStatus, Doctor, QueueVersion, Slot


def slots_for(user: User, *, include_closed: bool = False, lazy: bool = False) -> QuerySet[Slot]:
    """Slots the user may see.

    For patients the list is what they could book: active, future slots of approved doctors in active
    departments. `include_closed=True` keeps the tenant boundary but not that filter, so a booking door can
    say why a past or withdrawn slot cannot be booked (400) instead of pretending it does not exist (404).
    """
    qs = Slot.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        qs = qs.filter(organization_id=user.organization_id, clinic__is_active=True)  # type: ignore[misc]  # no organization: matches no row
        if not include_closed:
            qs = qs.filter(
                is_active=True,
                start__gt=timezone.now(),
                doctor__approval_status=ApprovalStatus.APPROVED,
                department__is_active=True,
            )
        return qs
    return restrict_to_clinics(qs, user, lazy=lazy)


def appointments_for(user: User) -> QuerySet[Appointment]:
    """Appointments the user may see: patients their own, everyone else those at their clinics."""
    qs = Appointment.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        return qs.filter(patient__user=user, organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    return restrict_to_clinics(qs, user)


def slot_for_booking(slot_id: int) -> Slot:
    """The slot with what booking into it checks and answers: its clinic, department and doctor (with
    user). A plain read, never a locking one: a booking locks the slot row alone (on MariaDB a locking
    read with a join would lock the clinic too, and every booking of the clinic would queue on it)."""
    return Slot.objects.select_related("clinic", "department", "doctor__user").get(pk=slot_id)


def appointment_for_change(appointment_id: int) -> Appointment:
    """The appointment with what a cancellation or move checks and answers (its clinic, patient,
    department and doctor with user). A plain read: the service holds the appointment's row lock."""
    return Appointment.objects.select_related("clinic", "patient", "department", "doctor__user").get(
        pk=appointment_id
    )


# The patient cut-off: how close to the start a patient may still cancel or reschedule online (staff may
# always). The booking service enforces it; the portal tells it in advance with the same words.


@dataclass(frozen=True)
class ChangeWindow:
    """Whether the patient may still cancel or reschedule online, and until when."""

    allowed: bool
    closes_at: dt.datetime
    cutoff_minutes: int
    reason: str = ""


def cutoff_label(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else f"{rest} minutes"


def patient_change_window(appointment: Appointment, now: dt.datetime) -> ChangeWindow:
    """Online changes are open until the clinic's cut-off (Clinic.cancellation_cutoff_minutes, two hours
    by default) before the start, that moment included."""
    clinic = appointment.clinic
    minutes = clinic.cancellation_cutoff_minutes
    closes_at = appointment.start - dt.timedelta(minutes=minutes)
    if now <= closes_at:
        return ChangeWindow(True, closes_at, minutes)
    call = f"please call the clinic on {clinic.phone}" if clinic.phone else "please call the clinic"
    reason = (
        f"Online changes close {cutoff_label(minutes)} before the start, so this appointment can no "
        f"longer be cancelled or rescheduled online; {call}."
    )
    return ChangeWindow(False, closes_at, minutes, reason)


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


def doctor_in_good_standing(user: User) -> bool:
    """The clinical-standing check scheduling registers with opd.core.tenancy: the user has an approved
    doctor profile (pending and suspended ones do not count). One indexed query, once per request."""
    return Doctor.objects.filter(user_id=user.pk, approval_status=ApprovalStatus.APPROVED).exists()


def doctors_for(user: User) -> QuerySet[Doctor]:
    """Doctors a user may see. Nothing crosses organizations.

    Admins: every doctor of their organization (they approve them). Staff and doctors: doctors with a
    department in a clinic they work at (a doctor also sees themself). Patients: approved doctors.
    """
    qs = Doctor.objects.all()
    if user.is_superuser:
        return qs
    qs = qs.filter(organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    if user.role == Role.ADMIN:
        return qs
    if user.role in (Role.STAFF, Role.DOCTOR):
        # A subquery rather than a join, so a doctor in two of the user's departments is listed once.
        works_here = Q(
            pk__in=Doctor.departments.through.objects.filter(  # type: ignore[misc]  # None only for superusers, who return earlier
                department__clinic_id__in=clinic_ids_for(user)
            ).values("doctor_id")
        )
        if user.role == Role.DOCTOR:
            works_here |= Q(user_id=user.pk)
        return qs.filter(works_here)
    return qs.filter(approval_status=ApprovalStatus.APPROVED)


# The live queue ----------------------------------------------------------------------------------------
#
# A queue is a doctor's day ("doctor:<id>") or a clinic's day ("clinic:<id>"). The day is the clinic's
# local date, so a doctor working in two time zones has each clinic's own today.

DOCTOR_QUEUE = "doctor"
CLINIC_QUEUE = "clinic"
# Before any consultation is done today, waits are estimated from the booked slot length, or this.
DEFAULT_CONSULTATION_MINUTES = 15
# Consultations outside these bounds (a click through, a forgotten "complete") would make estimates absurd.
MIN_COUNTED_CONSULTATION_MINUTES = 1
MAX_COUNTED_CONSULTATION_MINUTES = 120


def queue_name(kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


def parse_queue_name(queue: str) -> tuple[str, int]:
    kind, _, pk = queue.partition(":")
    if kind not in (DOCTOR_QUEUE, CLINIC_QUEUE) or not (pk.isascii() and pk.isdigit()):
        raise ValueError(f"not a queue name: {queue!r}")
    return kind, int(pk)


def queue_version(queue: str) -> int:
    return QueueVersion.objects.filter(queue=queue).values_list("last_value", flat=True).first() or 0


def starts_today(clinic: Clinic, start: dt.datetime, now: dt.datetime) -> bool:
    """Whether `start` falls on the clinic's local today: such an appointment is in today's live queues."""
    day_start, day_end = local_day_bounds(clinic, now)
    return day_start <= start < day_end


def local_day_bounds(clinic: Clinic, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the clinic's local today, as aware datetimes (DST days are 23 or 25 hours)."""
    day = timezone.localtime(now, clinic.tz).date()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=clinic.tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=clinic.tz)
    return start, end


def today_q(clinics: Iterable[Clinic], now: dt.datetime) -> Q:
    """Appointments starting on their clinic's local today."""
    q = Q(pk__in=[])
    for clinic in clinics:
        start, end = local_day_bounds(clinic, now)
        q |= Q(clinic_id=clinic.pk, start__gte=start, start__lt=end)
    return q


def tomorrow_q(clinics: Iterable[Clinic], now: dt.datetime) -> Q:
    """Appointments starting on their clinic's local tomorrow (the day after today_q's)."""
    q = Q(pk__in=[])
    for clinic in clinics:
        _, start = local_day_bounds(clinic, now)
        day_after = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time.min, tzinfo=clinic.tz)
        q |= Q(clinic_id=clinic.pk, start__gte=start, start__lt=day_after)
    return q


def doctor_clinics(doctor: Doctor) -> list[Clinic]:
    return list(Clinic.objects.filter(departments__doctors=doctor).distinct())


def waiting_line(doctor: Doctor, *, now: dt.datetime, pool: bool = False) -> QuerySet[Appointment]:
    """Today's waiting patients (checked in, not called) in queue order: the doctor's own, or with
    `pool` everyone waiting in the doctor's departments (a colleague's patient may be taken)."""
    qs = Appointment.objects.filter(status=AppointmentStatus.CHECKED_IN, called_at__isnull=True)
    if pool:
        departments = list(doctor.departments.select_related("clinic"))
        qs = qs.filter(department__in=departments).filter(today_q({d.clinic for d in departments}, now))
    else:
        qs = qs.filter(doctor=doctor).filter(today_q(doctor_clinics(doctor), now))
    return qs.order_by("queue_key", "id")


def serving(doctor: Doctor, *, now: dt.datetime) -> QuerySet[Appointment]:
    """Today's patients the doctor has called in or is seeing."""
    return (
        Appointment.objects.filter(doctor=doctor)
        .filter(today_q(doctor_clinics(doctor), now))
        .filter(
            Q(status=AppointmentStatus.IN_CONSULTATION)
            | Q(status=AppointmentStatus.CHECKED_IN, called_at__isnull=False)
        )
    )


# Who may watch a queue. Both raise NotFound for ids outside the user's organization or clinics.


def doctor_queue_access(user: User, doctor_id: int) -> Doctor:
    """The doctor themself, or admins and staff of a clinic where the doctor works. A colleague (or a
    patient) who can see the doctor is refused (403): the queue shows patients' names."""
    doctor = doctors_for(user).select_related("user").filter(pk=doctor_id).first()
    if doctor is None:
        raise NotFound("No such doctor.")
    if user.is_clinic_staff:
        return doctor
    if doctor.user_id == user.pk and (user.is_superuser or user.role == Role.DOCTOR):
        check_clinical_standing(user)  # their own queue shows patients: not while suspended or pending
        ids = clinic_ids_for(user)
        if ids is not None and not Clinic.objects.filter(pk__in=ids, departments__doctors=doctor).exists():
            # Removed from the clinic: its patients are another clinic's now.
            raise NotFound("You no longer work at a clinic of this queue.")
        return doctor
    raise PermissionDenied("Only the doctor and clinic staff may watch this queue.")


def clinic_queue_access(user: User, clinic_id: int) -> Clinic:
    """Admins and staff of the clinic (reception, the waiting-room display)."""
    clinic = clinics_for(user).filter(pk=clinic_id).first()
    if clinic is None:
        raise NotFound("No such clinic.")
    if user.is_clinic_staff:
        return clinic
    raise PermissionDenied("Only clinic staff may watch the clinic's queue.")


def queue_clinics_for(user: User) -> QuerySet[Clinic]:
    """Clinics whose waiting room the user may open."""
    if not user.is_clinic_staff:
        return Clinic.objects.none()
    return clinics_for(user).filter(is_active=True)


# Snapshots: what the API answers and the websocket sends on connect. JSON-ready (times as UTC ISO 8601).

WAITING, CALLED, BOOKED = "waiting", "called", "booked"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def queue_state(appt: Appointment) -> str:
    return appt.display_state


def _doctor_brief(doctor: Doctor) -> dict[str, Any]:
    return {"id": doctor.pk, "name": doctor.display_name, "room": doctor.room}


def queue_entry(appt: Appointment, *, public: bool = False) -> dict[str, Any]:
    """One appointment in a queue. `public` (the clinic queue, the waiting-room display): no patient,
    no priority reason, only what a screen in the waiting room may show."""
    entry: dict[str, Any] = {
        "appointment_id": appt.pk,
        "token": appt.token_number,
        "token_label": appt.token_label,
        "state": queue_state(appt),
        "department": {"id": appt.department_id, "name": appt.department.name},
        "called_at": _iso(appt.called_at),
        "position": None,
        "estimated_wait_minutes": None,
    }
    if public:
        entry["doctor"] = _doctor_brief(appt.doctor)
        return entry
    patient = appt.patient
    entry.update(
        {
            "patient": {"id": patient.pk, "name": patient.full_name, "mrn": patient.mrn},
            "doctor_id": appt.doctor_id,
            "is_priority": appt.is_priority,
            "priority_reason": appt.priority_reason,
            "appointment_start": _iso(appt.start),
            "checked_in_at": _iso(appt.checked_in_at),
            "started_at": _iso(appt.started_at),
            "completed_at": _iso(appt.completed_at),
            "no_show_at": _iso(appt.no_show_at),
        }
    )
    return entry


# What the queue's pages show of an appointment that lives above scheduling (consultations' latest NEWS2
# and its clinical response): that app registers a function from its AppConfig.ready() that sets
# attributes on the rows in one query, as opd.core's clinical-standing check is registered, so scheduling
# never imports it. With nothing registered the rows are shown without.
QueueRowDecorator = Callable[[list[Appointment]], None]
_queue_row_decorators: list[QueueRowDecorator] = []


def queue_row_decorator_register(decorator: QueueRowDecorator) -> None:
    if decorator not in _queue_row_decorators:
        _queue_row_decorators.append(decorator)


def decorate_queue_rows(appointments: list[Appointment]) -> None:
    for decorator in _queue_row_decorators:
        decorator(appointments)


# The alerts that hold now for a queue's patients (consultations: a latest NEWS2 at an urgent or emergency
# response), carried by every snapshot, so a page that connects or resyncs after an alert was sent still
# shows it (an alert is outside the versions: a socket that missed one could not tell otherwise).
# Registered from the consultations app's ready(), like the row decorators. A source answers, for the
# rows it is given, items shaped as the live frame's fields: {"appointment_id": ..., "alert": {...}}.
QueueAlertSource = Callable[[list[Appointment]], list[dict[str, Any]]]
_queue_alert_sources: list[QueueAlertSource] = []


def queue_alert_source_register(source: QueueAlertSource) -> None:
    if source not in _queue_alert_sources:
        _queue_alert_sources.append(source)


def queue_alerts(appointments: list[Appointment], *, public: bool = False) -> list[dict[str, Any]]:
    """The active alerts of these rows; `public` (the clinic's queue) drops the patient's name, as the
    live alert to a clinic's queue does (scheduling.realtime.on_queue_alert)."""
    found: list[dict[str, Any]] = []
    if not appointments:
        return found
    for source in _queue_alert_sources:
        found += source(appointments)
    if public:
        found = [
            {**item, "alert": {k: v for k, v in item["alert"].items() if k != "patient"}} for item in found
        ]
    return found


@dataclass
class Line:
    """One doctor's day, sorted out: who is being seen, called, waiting (in order), expected and done."""

    in_consultation: list[Appointment] = field(default_factory=list)
    called: list[Appointment] = field(default_factory=list)
    waiting: list[Appointment] = field(default_factory=list)
    expected: list[Appointment] = field(default_factory=list)
    done: list[Appointment] = field(default_factory=list)
    average_minutes: float = DEFAULT_CONSULTATION_MINUTES
    average_sample: int = 0

    @property
    def current(self) -> Appointment | None:
        return self.in_consultation[0] if self.in_consultation else None

    @property
    def with_doctor(self) -> int:
        return len(self.in_consultation) + len(self.called)

    @property
    def completed(self) -> int:
        return sum(a.status == AppointmentStatus.COMPLETED for a in self.done)

    @property
    def no_shows(self) -> int:
        return sum(a.status == AppointmentStatus.NO_SHOW for a in self.done)


def sort_line(appointments: Iterable[Appointment], now: dt.datetime) -> Line:
    line = Line()
    durations: list[float] = []
    slot_minutes: list[float] = []
    for appt in appointments:
        state = queue_state(appt)
        if state == AppointmentStatus.IN_CONSULTATION:
            line.in_consultation.append(appt)
        elif state == CALLED:
            line.called.append(appt)
        elif state == WAITING:
            line.waiting.append(appt)
            slot_minutes.append((appt.end - appt.start).total_seconds() / 60)
        elif state == BOOKED:
            line.expected.append(appt)
        elif state in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW):
            line.done.append(appt)
        if state == AppointmentStatus.COMPLETED and appt.started_at and appt.completed_at:
            minutes = (appt.completed_at - appt.started_at).total_seconds() / 60
            if MIN_COUNTED_CONSULTATION_MINUTES <= minutes <= MAX_COUNTED_CONSULTATION_MINUTES:
                durations.append(minutes)
    line.in_consultation.sort(key=lambda a: a.started_at or now, reverse=True)
    line.called.sort(key=lambda a: a.called_at)  # type: ignore[arg-type,return-value]  # a called patient has called_at
    line.waiting.sort(key=lambda a: (a.queue_key, a.pk))
    line.expected.sort(key=lambda a: (a.start, a.pk))
    line.done.sort(key=lambda a: a.completed_at or a.no_show_at or a.end, reverse=True)
    if durations:
        line.average_minutes, line.average_sample = sum(durations) / len(durations), len(durations)
    elif slot_minutes:
        line.average_minutes = sum(slot_minutes) / len(slot_minutes)
    # Waits: what is left of the consultation under way (a called patient counts as a whole one),
    # then one average consultation per patient ahead.
    average = line.average_minutes
    ahead = 0.0
    if line.in_consultation:
        started = line.in_consultation[0].started_at or now
        ahead = max(average - (now - started).total_seconds() / 60, 0)
    ahead += average * len(line.called)
    for index, appt in enumerate(line.waiting):
        # Set on the rows for templates and entries alike (attributes the model does not declare).
        appt.queue_position = index + 1  # type: ignore[attr-defined]
        appt.wait_minutes = math.ceil(ahead + index * average)  # type: ignore[attr-defined]
    return line


def _entries(appts: list[Appointment], *, public: bool = False) -> list[dict[str, Any]]:
    out = []
    for appt in appts:
        entry = queue_entry(appt, public=public)
        entry["position"] = getattr(appt, "queue_position", None)
        entry["estimated_wait_minutes"] = getattr(appt, "wait_minutes", None)
        out.append(entry)
    return out


def _day_appointments(q: Q) -> QuerySet[Appointment]:
    return (
        Appointment.objects.filter(q)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("patient", "department", "clinic", "doctor__user")
        # Queue entries show the patient's name and MRN only: no decrypting contact details per row.
        .defer(*(f"patient__{name}" for name in PATIENT_ENCRYPTED_FIELDS))
    )


def doctor_day(doctor: Doctor, *, now: dt.datetime) -> Line:
    """The doctor's appointments today (in each of their clinics' local today), sorted into a Line."""
    return sort_line(_day_appointments(Q(doctor=doctor) & today_q(doctor_clinics(doctor), now)), now)


def doctor_tomorrow(doctor: Doctor, *, now: dt.datetime) -> list[Appointment]:
    """The doctor's bookings for tomorrow (each clinic's local tomorrow), by start time: read-only on
    the dashboard, so the doctor sees the next day coming."""
    q = Q(doctor=doctor, status=AppointmentStatus.BOOKED) & tomorrow_q(doctor_clinics(doctor), now)
    return list(_day_appointments(q).order_by("start", "id"))


def clinic_day(clinic: Clinic, *, now: dt.datetime) -> tuple[list[tuple[Doctor, Line]], list[Appointment]]:
    """Each doctor's line at the clinic today (ordered by room, then name), and every called patient,
    latest call first."""
    by_doctor: dict[int, list[Appointment]] = {}
    doctors: dict[int, Doctor] = {}
    for appt in _day_appointments(today_q([clinic], now)):
        by_doctor.setdefault(appt.doctor_id, []).append(appt)
        doctors[appt.doctor_id] = appt.doctor
    order = sorted(doctors.values(), key=lambda d: (d.room or "~", d.display_name, d.pk))
    lines = [(doctor, sort_line(by_doctor[doctor.pk], now)) for doctor in order]
    called = sorted((a for _, line in lines for a in line.called), key=lambda a: a.called_at, reverse=True)  # type: ignore[arg-type,return-value]  # a called patient has called_at
    return lines, called


def doctor_queue_snapshot(doctor: Doctor, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The doctor's day: who is with them, called, waiting (in order, with estimated waits), expected
    later and done. The version is read before the rows, so the rows are at least that new."""
    now = now or timezone.now()
    queue = queue_name(DOCTOR_QUEUE, doctor.pk)
    version = queue_version(queue)
    line = doctor_day(doctor, now=now)
    return {
        "queue": queue,
        "version": version,
        "generated_at": _iso(now),
        "doctor": _doctor_brief(doctor),
        "days": [
            {
                "clinic_id": c.pk,
                "date": timezone.localtime(now, c.tz).date().isoformat(),
                "time_zone": c.time_zone,
            }
            for c in doctor_clinics(doctor)
        ],
        "average_consultation_minutes": round(line.average_minutes, 1),
        "average_sample": line.average_sample,
        "current": _entries([line.current])[0] if line.current else None,
        "in_consultation": _entries(line.in_consultation),
        "called": _entries(line.called),
        "waiting": _entries(line.waiting),
        "expected": _entries(line.expected),
        "done": _entries(line.done),
        "alerts": queue_alerts([*line.in_consultation, *line.called, *line.waiting]),
        "counts": {
            "expected": len(line.expected),
            "waiting": len(line.waiting),
            "called": len(line.called),
            "in_consultation": len(line.in_consultation),
            "completed": line.completed,
            "no_show": line.no_shows,
        },
    }


def clinic_queue_snapshot(clinic: Clinic, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The waiting room's view of a clinic's day: tokens called (latest first) and each doctor's room,
    patients in consultation and waiting tokens. Never a patient's name or priority reason."""
    now = now or timezone.now()
    queue = queue_name(CLINIC_QUEUE, clinic.pk)
    version = queue_version(queue)
    lines, called = clinic_day(clinic, now=now)
    return {
        "queue": queue,
        "version": version,
        "generated_at": _iso(now),
        "clinic": {"id": clinic.pk, "name": clinic.name, "time_zone": clinic.time_zone},
        "date": timezone.localtime(now, clinic.tz).date().isoformat(),
        "now_calling": _entries(called, public=True),
        "doctors": [
            {
                "doctor": _doctor_brief(doctor),
                "average_consultation_minutes": round(line.average_minutes, 1),
                "in_consultation": _entries(line.in_consultation, public=True),
                "called": _entries(line.called, public=True),
                "waiting": _entries(line.waiting, public=True),
            }
            for doctor, line in lines
        ],
        "alerts": queue_alerts(
            [a for _, line in lines for a in (*line.in_consultation, *line.called, *line.waiting)],
            public=True,
        ),
    }


def queue_snapshot(queue: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    kind, pk = parse_queue_name(queue)
    if kind == DOCTOR_QUEUE:
        return doctor_queue_snapshot(Doctor.objects.select_related("user").get(pk=pk), now=now)
    return clinic_queue_snapshot(Clinic.objects.get(pk=pk), now=now)
