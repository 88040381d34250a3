"""What a signed-in patient sees in the portal. Every read starts from a scheduling selector scoped to
the user (slots_for, appointments_for), so another patient's rows are never reachable from here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from consultations.models import Consultation
from consultations.selectors import (
    consultation_details,
    consultations_for,
    prescription_details,
    prescriptions_for,
    result_details,
    results_for,
)
from notifications.models import ContactPreference
from opd.core.models import AuditEvent, Clinic, Department, Organization, User
from patients.models import Patient
from patients.selectors import record_ids
from scheduling.models import ACTIVE_STATUSES, Appointment, AppointmentStatus, ApprovalStatus, Doctor, Slot
from scheduling.selectors import (
    ChangeWindow,
    appointments_for,
    bookable_slot_q,
    patient_change_window,
    slots_for,
)

CALENDAR_DAYS = 14
# A department's busiest day stays well below this; the cap keeps one page bounded whatever happens.
MAX_SLOTS_PER_DAY = 200


@dataclass(frozen=True)
class CalendarDay:
    date: dt.date
    open_count: int


def open_slots(
    user: User,
    *,
    department: Department,
    doctor: Doctor | None = None,
    exclude_slot_id: int | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Slot]:
    """Slots the user could book now in the department (optionally one doctor) within the calendar
    window: today and the next 13 days in the clinic's time zone."""
    return _in_window(
        slots_for(user), department=department, doctor=doctor, exclude_slot_id=exclude_slot_id, now=now
    )


def manage_link_slots(appointment: Appointment, *, include_closed: bool = False) -> QuerySet[Slot]:
    """The slots a manage-booking link may move `appointment` to: its own organization and department
    only, and (unless include_closed, for a form that says why a slot is refused) what a patient could
    book: active, future slots of approved doctors at open clinics."""
    qs = Slot.objects.filter(
        organization_id=appointment.organization_id,
        department_id=appointment.department_id,
        clinic__is_active=True,
    )
    if include_closed:
        return qs
    return qs.filter(
        is_active=True,
        start__gt=timezone.now(),
        doctor__approval_status=ApprovalStatus.APPROVED,
        department__is_active=True,
    )


def manage_link_open_slots(appointment: Appointment, now: dt.datetime | None = None) -> QuerySet[Slot]:
    """Open slots a manage-booking link offers for a move (the calendar window, not its own slot)."""
    return _in_window(
        manage_link_slots(appointment),
        department=appointment.department,
        exclude_slot_id=appointment.slot_id,
        now=now,
    )


def _in_window(
    qs: QuerySet[Slot],
    *,
    department: Department,
    doctor: Doctor | None = None,
    exclude_slot_id: int | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Slot]:
    now = now or timezone.now()
    first_day = timezone.localtime(now, department.clinic.tz).date()
    qs = qs.filter(
        bookable_slot_q(now),
        department=department,
        date__gte=first_day,
        date__lt=first_day + dt.timedelta(days=CALENDAR_DAYS),
    )
    if doctor is not None:
        qs = qs.filter(doctor=doctor)
    if exclude_slot_id is not None:
        qs = qs.exclude(pk=exclude_slot_id)
    return qs


def calendar(qs: QuerySet[Slot], clinic: Clinic, now: dt.datetime | None = None) -> list[CalendarDay]:
    """The 14 clinic-local days of the window, each with its number of open slots (one query)."""
    now = now or timezone.now()
    first_day = timezone.localtime(now, clinic.tz).date()
    counts = dict(qs.order_by().values("date").annotate(n=Count("id")).values_list("date", "n"))
    return [
        CalendarDay(date=day, open_count=counts.get(day, 0))
        for day in (first_day + dt.timedelta(days=i) for i in range(CALENDAR_DAYS))
    ]


def slots_on(qs: QuerySet[Slot], day: dt.date) -> list[Slot]:
    """The day's open slots, grouped by doctor then time, with what the page shows in the same query."""
    return list(
        qs.filter(date=day)
        .select_related("doctor__user", "department", "clinic")
        .order_by("doctor__user__last_name", "doctor__user__first_name", "doctor_id", "start")[
            :MAX_SLOTS_PER_DAY
        ]
    )


def nearest_open_slots(user: User, slot: Slot, *, limit: int = 5) -> list[Slot]:
    """Open slots in the same department whose start is closest to `slot`'s, soonest first."""
    base = (
        slots_for(user)
        .filter(bookable_slot_q(timezone.now()), department_id=slot.department_id)
        .exclude(pk=slot.pk)
        .select_related("doctor__user", "department", "clinic")
    )
    later = list(base.filter(start__gte=slot.start).order_by("start", "doctor_id")[:limit])
    earlier = list(base.filter(start__lt=slot.start).order_by("-start", "doctor_id")[:limit])
    closest = sorted(later + earlier, key=lambda s: (abs(s.start - slot.start), s.start))[:limit]
    return sorted(closest, key=lambda s: (s.start, s.doctor_id))


def first_open_day(user: User, department: Department) -> dt.date | None:
    return (
        slots_for(user)
        .filter(bookable_slot_q(timezone.now()), department=department)
        .order_by("start")
        .values_list("date", flat=True)
        .first()
    )


def my_appointments(user: User) -> QuerySet[Appointment]:
    return appointments_for(user).select_related("clinic", "department", "doctor__user")


def split_appointments(
    user: User, now: dt.datetime | None = None
) -> tuple[QuerySet[Appointment], QuerySet[Appointment]]:
    """(upcoming, past): upcoming holds active appointments not yet over, soonest first; past holds the
    rest (over, completed, cancelled, missed), latest first."""
    now = now or timezone.now()
    mine = my_appointments(user)
    upcoming = mine.filter(status__in=ACTIVE_STATUSES, end__gt=now).order_by("start", "id")
    past = mine.exclude(status__in=ACTIVE_STATUSES, end__gt=now).order_by("-start", "-id")
    return upcoming, past


def clinical_record(user: User, patient: Patient) -> QuerySet[Consultation]:
    """The patient's completed consultations, newest first, each with the prescriptions and results
    filed with it. Read through the consultations app's selectors, which show a patient only their own
    completed records; a fixed number of queries per page."""
    return (
        consultation_details(consultations_for(user).filter(patient=patient))
        .select_related("appointment__department")
        .prefetch_related(
            Prefetch(
                "prescriptions",
                queryset=prescription_details(prescriptions_for(user)).order_by("created_at", "id"),
                to_attr="shared_prescriptions",
            ),
            Prefetch(
                "results",
                queryset=result_details(results_for(user)).order_by("created_at", "id"),
                to_attr="shared_results",
            ),
        )
        .order_by("-completed_at", "-id")
    )


def contact_preference_of(patient: Patient) -> ContactPreference:
    """The patient's saved preferences, or the defaults (every channel) when none are saved yet."""
    return ContactPreference.objects.filter(patient=patient).first() or ContactPreference(patient=patient)


def change_window(appointment: Appointment, now: dt.datetime | None = None) -> ChangeWindow:
    """Whether the page offers cancel and reschedule: a booked appointment inside the cut-off rule the
    booking service enforces (scheduling.selectors.patient_change_window), told in advance so the page
    can say why the buttons are gone. The service stays the judge when a form is posted."""
    window = patient_change_window(appointment, now or timezone.now())
    if appointment.status != AppointmentStatus.BOOKED:
        reason = (
            f"An appointment that is {appointment.get_status_display().lower()} cannot be changed online."
        )
        return ChangeWindow(False, window.closes_at, window.cutoff_minutes, reason)
    return window


# Who opened my record -------------------------------------------------------------------------------

ACCESS_LABELS = {
    "record.viewed": "Viewed",
    "record.downloaded": "Downloaded a file",
    "record.printed": "Printed",
    "record.exported": "Exported",
    "record.break_glass": "Opened with a stated reason (no appointment with you)",
}


@dataclass(frozen=True)
class RecordAccess:
    at: dt.datetime
    time_zone: str
    kind: str
    label: str
    role: str
    clinic: str
    name: str
    with_reason: bool


def record_accesses(user: User, patient: Patient) -> QuerySet[AuditEvent]:
    """Reads of the patient's own record by others (their own reads are left out: they know them),
    newest first. Scoped by the patient's organization and id: another patient's rows never match.
    Reads of a duplicate record later merged into this one are the patient's too (the log is never
    rewritten, so they still carry the duplicate's id)."""
    return (
        AuditEvent.objects.filter(
            organization_id=patient.organization_id,
            patient_id__in=record_ids(patient),
            action__in=list(ACCESS_LABELS),
        )
        .exclude(actor_id=user.pk)
        .select_related("clinic", "actor")
        .order_by("-created_at", "-pk")
    )


ROLE_LABELS = {
    "doctor": "Doctor",
    "staff": "Clinic staff",
    "admin": "Administrator",
    "superuser": "Platform operator",
    "patient": "Patient",
}


def describe_accesses(events: list[AuditEvent], patient: Patient) -> list[RecordAccess]:
    """As the patient is shown them: the time in the clinic's zone (the patient's own clinic's for a
    read that spans clinics), names only where the organization's policy says so."""
    show_names = Organization.objects.filter(pk=patient.organization_id, access_log_shows_names=True).exists()
    registered = patient.registered_at_clinic
    fallback = registered.time_zone if registered is not None else "UTC"
    out = []
    for event in events:
        name = ""
        if show_names and event.actor is not None:
            name = event.actor.get_full_name() or event.actor.username
        out.append(
            RecordAccess(
                at=event.created_at,
                time_zone=event.clinic.time_zone if event.clinic else fallback,
                kind=event.action,
                label=ACCESS_LABELS.get(event.action, event.action),
                role=ROLE_LABELS.get(event.actor_role, event.actor_role or "System"),
                clinic=event.clinic.name if event.clinic else "",
                name=name,
                with_reason=bool(event.reason),
            )
        )
    return out
