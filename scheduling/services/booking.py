"""Booking, auto-assignment, cancellation and rescheduling: the one door every channel uses.

Locks, always taken in this order so two bookings never wait on each other in a cycle:
patient row -> appointment row -> slot row(s) (several slots in id order) -> the QueueVersion rows of
today's live queues (name order), taken only when the appointment is on its clinic's today, as every
queue change takes them last (scheduling.services.queue). The patient lock serializes
one patient's bookings, so the overlap check cannot race; the slot lock serializes the seats of a slot.
The database backs both with constraints (booked_count <= capacity; one appointment per slot seat).

Each booking, cancellation and move publishes exactly one event (APPOINTMENT_BOOKED, _CANCELLED,
_RESCHEDULED) on commit, carrying ids, the clinic and day, and the live queues' new versions with the
appointment as they show it (empty when nothing is today); higher apps subscribe to it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Field, Model, QuerySet, Sum
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.clinic_time import in_clinic_time
from opd.core.db import (
    ColumnLoader,
    RowWriter,
    columns_sql,
    instance_from_json,
    json_object_sql,
    retry_on_deadlock,
    service_atomic,
)
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import Clinic, Department, Role, User
from opd.core.tenancy import ScopedId
from patients.models import Patient

from .. import listing_cache
from ..models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    ApprovalStatus,
    BookingChannel,
    Doctor,
    Slot,
)
from ..selectors import (
    appointment_for_change,
    bookable_slot_q,
    patient_change_window,
    slot_for_booking,
    starts_today,
)
from .queue import queue_change, queues_of

# How often auto-assignment looks again when every candidate seat was taken under it.
MAX_ASSIGN_ROUNDS = 25
CANCELLABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


def _lock_patient(patient_id: int) -> Patient:
    return Patient.objects.select_for_update().get(pk=patient_id)


def _check_actor_may_book_for(actor: User | None, patient: Patient) -> None:
    # Doors already scope what an actor can reach; this is the second line for patients themselves.
    if (
        actor is not None
        and not actor.is_superuser
        and actor.role == Role.PATIENT
        and patient.user_id != actor.pk
    ):
        raise NotFound("No such patient.", fields={"patient": "Unknown patient."})
    if actor is not None and not actor.is_superuser and actor.organization_id != patient.organization_id:
        raise NotFound("No such patient.", fields={"patient": "Unknown patient."})


EMAIL_UNVERIFIED = (
    "Please confirm your e-mail address before booking: open the link we sent you, or ask for a new one "
    "on your profile page."
)


def _books_for_self(actor: User | None, patient: Patient) -> bool:
    """A patient booking their own appointment (the portal, or the API with a patient's sign-in), as
    opposed to staff booking on the patient's behalf, who may override the patient-only rules."""
    return (
        actor is not None
        and not actor.is_superuser
        and actor.role == Role.PATIENT
        and patient.user_id == actor.pk
    )


def _check_email_verified(actor: User | None, patient: Patient) -> None:
    # Checked at the service so every door (portal pages, API) refuses alike; staff bookings pass.
    if _books_for_self(actor, patient) and actor is not None and actor.email_verified_at is None:
        raise PermissionDenied(EMAIL_UNVERIFIED, code="email_unverified")


def _check_booking_cap(
    actor: User | None, patient: Patient, now: dt.datetime, held: int | None = None
) -> None:
    """A patient booking themselves holds at most OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT future booked
    appointments in the organization. Caller holds the patient's row lock, so two bookings at the
    boundary are serialized and the second sees the first. `held`: that count, read under the lock."""
    cap = settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT
    if not cap or not _books_for_self(actor, patient):
        return
    if held is None:
        held = Appointment.objects.filter(
            patient=patient,
            organization_id=patient.organization_id,
            status=AppointmentStatus.BOOKED,
            start__gt=now,
        ).count()
    if held >= cap:
        raise Conflict(
            f"You already have {held} upcoming appointments; you may hold at most {cap} at a time. "
            "Cancel one, or call the clinic.",
            code="booking_cap",
        )


def _check_patient_bookable(patient: Patient) -> None:
    if not patient.is_active:
        raise ValidationFailed(
            "The patient is inactive; reactivate the record before booking.",
            fields={"patient": "This patient is inactive."},
        )


def _check_slot_bookable(
    slot: Slot, shown: Slot, patient: Patient, now: dt.datetime, field: str = "slot"
) -> None:
    """`slot` is the locked row; `shown` the same slot read with its clinic, department and doctor
    (selectors.slot_for_booking), which are not locked: a booking must not lock its clinic."""
    if slot.organization_id != patient.organization_id:
        raise NotFound("No such slot.", fields={field: "Unknown slot."})
    if slot.start <= now:
        raise ValidationFailed("This slot has already started.", fields={field: "The slot is in the past."})
    if not (slot.is_active and shown.clinic.is_active and shown.department.is_active):
        raise ValidationFailed("This slot is no longer offered.", fields={field: "The slot is not offered."})
    if shown.doctor.approval_status != ApprovalStatus.APPROVED:
        raise ValidationFailed(
            "The doctor is not taking bookings.", fields={field: "The doctor is not taking bookings."}
        )
    if slot.booked_count >= slot.capacity:
        raise Conflict("This slot is fully booked.", fields={field: "The slot is full."}, code="slot_full")


def _today_queues(shown: Slot | Appointment, now: dt.datetime) -> list[str]:
    """The live queues of a slot or appointment (with its clinic at hand) if it is on its clinic's today."""
    if not starts_today(shown.clinic, shown.start, now):
        return []
    return queues_of(clinic_id=shown.clinic_id, doctor_ids=[shown.doctor_id])


def _check_no_overlap(
    patient: Patient, start: dt.datetime, end: dt.datetime, exclude_id: int | None = None
) -> None:
    overlapping = Appointment.objects.filter(
        patient=patient, status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start
    )
    if exclude_id is not None:
        overlapping = overlapping.exclude(pk=exclude_id)
    clash = overlapping.select_related("clinic").first()
    if clash:
        raise _overlap_conflict(clash)


def _free_seat(slot: Slot, taken: set[int] | None = None) -> int:
    if taken is None:
        seats = Appointment.objects.filter(slot=slot, seat__isnull=False).values_list("seat", flat=True)
        taken = {seat for seat in seats if seat is not None}
    return next(n for n in range(1, slot.capacity + 1) if n not in taken)


# The booking, cancellation and move writes, their SQL built once (opd.core.db.RowWriter): each writes what
# save() (with these update_fields) would.
_SEAT_COUNT = RowWriter(Slot, ["booked_count"])
_APPOINTMENT_ROW = RowWriter(Appointment)
_CANCELLATION = RowWriter(
    Appointment, ["status", "seat", "cancelled_at", "cancelled_by", "cancellation_reason", "updated_at"]
)
_MOVE = RowWriter(
    Appointment,
    ["slot", "seat", "start", "end", "doctor", "department", "clinic", "reschedule_count", "updated_at"],
)


def _take_seat(slot: Slot, taken: set[int] | None = None) -> int:
    """Caller holds the slot's row lock. `taken`: the slot's seats in use, read under that lock."""
    seat = _free_seat(slot, taken)
    slot.booked_count += 1
    _SEAT_COUNT.update(slot)
    # The slot's post_save receiver bumps the same two versions; one transaction's bumps are a set, so
    # each goes out once at commit. This call keeps the booking's own bump independent of that receiver.
    listing_cache.slot_changed(doctor_id=slot.doctor_id, day=slot.date, clinic_id=slot.clinic_id)
    return seat


def _release_seat(slot: Slot) -> None:
    """Caller holds the slot's row lock."""
    slot.booked_count -= 1
    _SEAT_COUNT.update(slot)
    listing_cache.slot_changed(doctor_id=slot.doctor_id, day=slot.date, clinic_id=slot.clinic_id)


def _create(
    *,
    actor: User | None,
    patient: Patient,
    slot: Slot,
    shown: Slot,
    reason: str,
    channel: str,
    taken: set[int] | None = None,
) -> Appointment:
    """Take a seat of the locked `slot` (`shown`: the same slot with its clinic, department and doctor),
    bump today's queues if it is today, and publish APPOINTMENT_BOOKED, the booking's one event."""
    seat = _take_seat(slot, taken)
    appointment = Appointment(
        organization_id=slot.organization_id,
        clinic_id=slot.clinic_id,
        department_id=slot.department_id,
        doctor_id=slot.doctor_id,
        patient=patient,
        slot=slot,
        seat=seat,
        start=slot.start,
        end=slot.end,
        reason=reason,
        channel=channel,
        booked_by=actor if actor and actor.pk else None,
    )
    _APPOINTMENT_ROW.insert(appointment)
    # The answer and the live screens need these; they were read a moment ago.
    appointment.clinic, appointment.department, appointment.doctor = (
        shown.clinic,
        shown.department,
        shown.doctor,
    )
    audit(
        actor=actor,
        action="appointment.booked",
        obj=appointment,
        organization_id=slot.organization_id,
        slot=slot.pk,
        channel=channel,
    )
    # Where and when, so subscribers need not read the row back to know which day changed.
    events.publish(
        events.APPOINTMENT_BOOKED,
        appointment_id=appointment.pk,
        clinic_id=slot.clinic_id,
        doctor_id=slot.doctor_id,
        day=slot.date,
        start=slot.start,
        **queue_change(appointment, action="booked", queues=_today_queues(shown, timezone.now())),
    )
    return appointment


def _conflict_from(exc: IntegrityError) -> Conflict:
    return Conflict(
        "The booking clashed with another change; nothing was booked. Please try again.", code="conflict"
    )


# The one locking read of a booking (_lock_for_booking): which columns it loads. The patient's encrypted
# contact fields are left deferred (nothing here reads them); the slot is read whole.
def _fields(model: type[Model], names: Sequence[str] | None = None) -> list[Field[Any, Any]]:
    if names is None:
        return list(model._meta.concrete_fields)
    return [cast("Field[Any, Any]", model._meta.get_field(name)) for name in names]


_PATIENT_COLUMNS = _fields(
    Patient,
    (
        "id",
        "organization",
        "registered_at_clinic",
        "user",
        "mrn",
        "first_name",
        "last_name",
        "date_of_birth",
        "sex",
        "status",
        "merged_into",
    ),
)
_SLOT_COLUMNS = _fields(Slot)
_PATIENT_ROW = ColumnLoader(Patient, _PATIENT_COLUMNS)
_SLOT_ROW = ColumnLoader(Slot, _SLOT_COLUMNS)
_CLINIC_FIELDS = _fields(Clinic)
_DEPARTMENT_FIELDS = _fields(Department)
_DOCTOR_FIELDS = _fields(Doctor)
_DOCTOR_USER_FIELDS = _fields(User, ("id", "username", "first_name", "last_name"))


@dataclass
class _Locked:
    patient: Patient
    slot: Slot  # with its clinic, department and doctor (with user) at hand
    taken: set[int]  # the slot's seats in use
    clash_id: int | None  # an active appointment of the patient's that overlaps the slot
    held: int | None  # the patient's future booked appointments (only when the booking cap applies)


def _scope_sql(column: str, ref: Patient | Slot | ScopedId) -> tuple[str, list[Any]]:
    if not isinstance(ref, ScopedId):
        return f"{column} = %s", [ref.pk]
    # Without the scope's ordering: it means nothing inside IN (...), and compiling it was half the cost of
    # compiling the scope on every booking.
    sql, params = ref.scope.order_by().values("pk").query.sql_with_params()
    where = f"{column} IN ({sql})"
    if ref.pk is not None:
        where = f"{column} = %s AND {where}"
        params = (ref.pk, *params)
    return where, list(params)


def _lock_for_booking(
    *, patient: Patient | ScopedId, slot: Slot | ScopedId, held_since: dt.datetime | None
) -> _Locked | None:
    """Lock the patient's row and the slot's row in one statement (patient first, as every lock here is
    taken) and read, under those locks, all a booking checks and answers: the slot's clinic, department
    and doctor, its seats in use, an overlapping appointment of the patient's and, for the booking cap,
    how many the patient holds. A ScopedId's scope is a condition of the same statement, so the door reads
    nothing first. None when either is not found (within its scope).

    The related rows come from scalar subqueries, which a locking read does not lock (MariaDB/InnoDB, as
    MySQL): a join would lock the clinic, and every booking of the clinic would queue on it. The
    subqueries run after the lock is granted, so they see what a booking that held it committed."""
    # Every name in the SQL below comes from the models' metadata and every value is a parameter.
    qn = connection.ops.quote_name
    a = qn(Appointment._meta.db_table)
    status_in = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    patient_where, patient_params = _scope_sql("p.id", patient)
    slot_where, slot_params = _scope_sql("s.id", slot)
    held_sql, held_params = "NULL", []
    if held_since is not None:
        held_sql = (
            f"(SELECT COUNT(*) FROM {a} h WHERE h.patient_id = p.id AND h.organization_id = p.organization_id"  # noqa: S608
            f" AND h.status = %s AND h.{qn('start')} > %s)"
        )
        held_params = [AppointmentStatus.BOOKED, held_since]
    sql = (
        # STRAIGHT_JOIN (MariaDB/MySQL): the patient's row first, the lock order of every booking change.
        f"SELECT {'STRAIGHT_JOIN ' if connection.vendor == 'mysql' else ''}"  # noqa: S608
        + columns_sql(_PATIENT_COLUMNS, "p")
        + ", "
        + columns_sql(_SLOT_COLUMNS, "s")
        + f", (SELECT {json_object_sql(_CLINIC_FIELDS, 'c')} FROM {qn(Clinic._meta.db_table)} c"  # noqa: S608
        " WHERE c.id = s.clinic_id)"
        f", (SELECT {json_object_sql(_DEPARTMENT_FIELDS, 'd')} FROM {qn(Department._meta.db_table)} d"
        " WHERE d.id = s.department_id)"
        f", (SELECT {json_object_sql(_DOCTOR_FIELDS, 'r')} FROM {qn(Doctor._meta.db_table)} r"
        " WHERE r.id = s.doctor_id)"
        f", (SELECT {json_object_sql(_DOCTOR_USER_FIELDS, 'u')} FROM {qn(User._meta.db_table)} u"
        f" WHERE u.id = (SELECT r.user_id FROM {qn(Doctor._meta.db_table)} r WHERE r.id = s.doctor_id))"
        f", (SELECT GROUP_CONCAT(t.seat) FROM {a} t WHERE t.slot_id = s.id AND t.seat IS NOT NULL)"
        f", (SELECT o.id FROM {a} o WHERE o.patient_id = p.id AND o.status IN ({status_in})"
        f" AND o.{qn('start')} < s.{qn('end')} AND o.{qn('end')} > s.{qn('start')} ORDER BY o.id LIMIT 1)"
        f", {held_sql}"
        f" FROM {qn(Patient._meta.db_table)} p, {qn(Slot._meta.db_table)} s"
        f" WHERE {patient_where} AND {slot_where}"
        + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    )
    params = [*ACTIVE_STATUSES, *held_params, *patient_params, *slot_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    n_patient, n_slot = len(_PATIENT_COLUMNS), len(_SLOT_COLUMNS)
    locked_patient = _PATIENT_ROW.load(row[:n_patient])
    locked_slot = _SLOT_ROW.load(row[n_patient : n_patient + n_slot])
    clinic_json, department_json, doctor_json, user_json, seats, clash_id, held = row[n_patient + n_slot :]
    doctor = instance_from_json(Doctor, _DOCTOR_FIELDS, doctor_json)
    doctor.user = instance_from_json(User, _DOCTOR_USER_FIELDS, user_json)
    locked_slot.clinic = instance_from_json(Clinic, _CLINIC_FIELDS, clinic_json)
    locked_slot.department = instance_from_json(Department, _DEPARTMENT_FIELDS, department_json)
    locked_slot.doctor = doctor
    return _Locked(
        patient=locked_patient,
        slot=locked_slot,
        taken={int(seat) for seat in str(seats).split(",")} if seats else set(),
        clash_id=clash_id,
        held=held,
    )


def _not_found_for_booking(patient: Patient | ScopedId, slot: Slot | ScopedId) -> NotFound:
    """Which of the two the locking read could not find (within the door's scope): a second read, on the
    refusal path only."""
    fields = {}
    if isinstance(patient, ScopedId):
        rows = patient.scope if patient.pk is None else patient.scope.filter(pk=patient.pk)
        if not rows.exists():
            if patient.pk is None:
                message = "No patient record is linked to this account."
                return NotFound(message, fields={"patient": message})
            fields["patient"] = "Unknown patient."
    if isinstance(slot, ScopedId) and not slot.scope.filter(pk=slot.pk).exists():
        fields["slot"] = "Unknown slot."
    if not fields:  # deleted between the two reads
        fields["slot"] = "Unknown slot."
    noun = " and ".join(fields)
    return NotFound(f"No such {noun}.", fields=fields)


def _overlap_conflict(clash: Appointment) -> Conflict:
    """The refusal of a booking or move that overlaps `clash` (with its clinic at hand)."""
    return Conflict(
        # On the clash's own clinic clock, as staff and the patient were told it.
        f"The patient already has an appointment at {in_clinic_time(clash.start, clash.clinic.time_zone)} "
        "that overlaps this time.",
        fields={"patient": "Overlapping appointment."},
        code="overlap",
    )


@retry_on_deadlock
def appointment_book(
    *,
    actor: User | None,
    patient: Patient | ScopedId,
    slot: Slot | ScopedId,
    reason: str = "",
    channel: str = BookingChannel.API,
) -> Appointment:
    """Book `patient` into `slot`. Locks the patient row, then the slot row (one statement).

    Either may be a ScopedId from a door that has not read the row: it is looked up within its scope by
    the same locking read (404 naming the field when it is not there). A booking that commits costs the
    request that statement, the slot's UPDATE, the appointment's and the audit's INSERTs and what the
    published event writes; nothing is read back."""
    now = timezone.now()
    cap_applies = (
        settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT
        and actor is not None
        and not actor.is_superuser
        and actor.role == Role.PATIENT
    )
    try:
        with service_atomic():
            locked = _lock_for_booking(patient=patient, slot=slot, held_since=now if cap_applies else None)
            if locked is None:
                raise _not_found_for_booking(patient, slot)
            booked_for = locked.patient
            _check_actor_may_book_for(actor, booked_for)
            _check_email_verified(actor, booked_for)
            _check_patient_bookable(booked_for)
            _check_booking_cap(actor, booked_for, now, held=locked.held)
            _check_slot_bookable(locked.slot, locked.slot, booked_for, now)
            if locked.clash_id is not None:
                raise _overlap_conflict(Appointment.objects.select_related("clinic").get(pk=locked.clash_id))
            return _create(
                actor=actor,
                patient=booked_for,
                slot=locked.slot,
                shown=locked.slot,
                reason=reason,
                channel=channel,
                taken=locked.taken,
            )
    except IntegrityError as exc:
        raise _conflict_from(exc) from exc


def _open_slots(
    organization_id: int, department_id: int, after: dt.datetime, before: dt.datetime | None
) -> QuerySet[Slot]:
    qs = Slot.objects.filter(
        bookable_slot_q(timezone.now()),
        organization_id=organization_id,
        department_id=department_id,
        start__gte=after,
    )
    if before is not None:
        qs = qs.filter(end__lte=before)
    return qs


def _candidates(
    patient: Patient, department_id: int, after: dt.datetime, before: dt.datetime | None
) -> list[int]:
    """Open slot ids on the earliest day that has one, in assignment order: the doctor with the fewest
    bookings that day first, then the earliest slot. Slots that overlap the patient's own appointments
    are left out."""
    open_slots = _open_slots(patient.organization_id, department_id, after, before)
    busy = list(
        Appointment.objects.filter(patient=patient, status__in=ACTIVE_STATUSES, end__gt=after).values_list(
            "start", "end"
        )
    )
    while True:
        first = open_slots.order_by("start").values_list("date", flat=True).first()
        if first is None:
            return []
        day_slots = [
            s
            for s in open_slots.filter(date=first).values("id", "doctor_id", "start", "end")
            if not any(s["start"] < b_end and s["end"] > b_start for b_start, b_end in busy)
        ]
        if day_slots:
            break
        # Every open slot that day clashes with the patient's own appointments: look at later days.
        open_slots = open_slots.filter(date__gt=first)
    load = defaultdict(int)
    for row in (
        Slot.objects.filter(doctor_id__in={s["doctor_id"] for s in day_slots}, date=first)
        .values("doctor_id")
        .annotate(n=Sum("booked_count"))
    ):
        load[row["doctor_id"]] = row["n"] or 0
    day_slots.sort(key=lambda s: (load[s["doctor_id"]], s["start"], s["doctor_id"]))
    return [s["id"] for s in day_slots]


@retry_on_deadlock
def appointment_book_first_available(
    *,
    actor: User | None,
    patient: Patient,
    department_id: int,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    reason: str = "",
    channel: str = BookingChannel.API,
) -> Appointment:
    """Assign the approved doctor with the fewest bookings that day, then their earliest open slot.

    Locks the patient row, then tries candidate slots with FOR UPDATE SKIP LOCKED (one row at a time, so
    concurrent bookers spread over free seats instead of queueing on one). When every candidate is locked
    by someone else it waits on the best one and looks again, so a seat is never reported gone while free.
    """
    _check_actor_may_book_for(actor, patient)
    _check_email_verified(actor, patient)
    now = timezone.now()
    after = max(after or now, now)
    if before is not None and before <= after:
        raise ValidationFailed(
            "The window ends before it starts.", fields={"before": "Must be after 'after'."}
        )
    try:
        with transaction.atomic():
            patient = _lock_patient(patient.pk)
            _check_patient_bookable(patient)
            _check_booking_cap(actor, patient, now)
            for _ in range(MAX_ASSIGN_ROUNDS):
                ids = _candidates(patient, department_id, after, before)
                if not ids:
                    raise Conflict(
                        "No open slot in this department for the requested time.",
                        fields={"department": "No open slot."},
                        code="no_slot",
                    )
                slot = None
                for slot_id in ids:
                    slot = (
                        Slot.objects.select_for_update(skip_locked=True)
                        .filter(pk=slot_id, is_active=True, booked_count__lt=F("capacity"))
                        .first()
                    )
                    if slot is not None:
                        break
                if slot is None:
                    # Every candidate is held by another booking: wait for the best one. The condition
                    # sits in the locking read so that, under READ COMMITTED, a row that turns out full
                    # is unlocked at once; holding it while trying the next would risk a deadlock.
                    slot = (
                        Slot.objects.select_for_update()
                        .filter(pk=ids[0], is_active=True, booked_count__lt=F("capacity"))
                        .first()
                    )
                    if slot is None:
                        continue
                return _create(
                    actor=actor,
                    patient=patient,
                    slot=slot,
                    shown=slot_for_booking(slot.pk),
                    reason=reason,
                    channel=channel,
                )
            raise Conflict("Every open seat was taken while assigning; please try again.", code="busy")
    except IntegrityError as exc:
        raise _conflict_from(exc) from exc


def _lock_appointment(appointment_id: int) -> Appointment:
    return Appointment.objects.select_for_update().get(pk=appointment_id)


def _show_as(appt: Appointment, shown: Appointment) -> None:
    """Give the locked row the related rows read beside it (selectors.appointment_for_change)."""
    appt.clinic, appt.patient = shown.clinic, shown.patient
    appt.department, appt.doctor = shown.department, shown.doctor


def _check_patient_cutoff(
    actor: User | None, appointment: Appointment, now: dt.datetime, *, as_patient: bool = False
) -> None:
    """Patients may change a booking only up to the clinic's cut-off (selectors.patient_change_window);
    staff may always. `as_patient`: the change comes from the patient without an account to show for it
    (a signed manage-booking link), so the patient's rule applies whoever the actor is. `appointment`
    comes with its clinic."""
    is_patient = actor is not None and not actor.is_superuser and actor.role == Role.PATIENT
    if not (as_patient or is_patient):
        return
    window = patient_change_window(appointment, now)
    if not window.allowed:
        raise Conflict(window.reason, code="cutoff_passed")


@retry_on_deadlock
def appointment_cancel(
    *,
    actor: User | None,
    appointment: Appointment,
    reason: str = "",
    channel: str = BookingChannel.API,
    as_patient: bool = False,
) -> Appointment:
    """Cancel and free the seat. Locks the appointment row, then its slot row. `as_patient`: the
    patient's cut-off applies even without a patient account as the actor (a manage-booking link)."""
    try:
        with transaction.atomic():
            appt = _lock_appointment(appointment.pk)
            if appt.status not in CANCELLABLE:
                raise Conflict(
                    f"An appointment that is {appt.get_status_display().lower()} cannot be cancelled.",
                    code="invalid_state",
                )
            now = timezone.now()
            shown = appointment_for_change(appt.pk)
            _check_patient_cutoff(actor, shown, now, as_patient=as_patient)
            slot = Slot.objects.select_for_update().get(pk=appt.slot_id)
            _release_seat(slot)
            appt.status = AppointmentStatus.CANCELLED
            appt.seat = None
            appt.cancelled_at = now
            appt.cancelled_by = actor if actor and actor.pk else None
            appt.cancellation_reason = reason
            _CANCELLATION.update(appt)
            audit(
                actor=actor,
                action="appointment.cancelled",
                obj=appt,
                organization_id=appt.organization_id,
                reason=reason,
                channel=channel,
            )
            _show_as(appt, shown)
            events.publish(
                events.APPOINTMENT_CANCELLED,
                appointment_id=appt.pk,
                clinic_id=appt.clinic_id,
                doctor_id=appt.doctor_id,
                day=slot.date,
                start=appt.start,
                **queue_change(appt, action="cancelled", queues=_today_queues(shown, now)),
            )
            return appt
    except IntegrityError as exc:
        raise _conflict_from(exc) from exc


@retry_on_deadlock
def appointment_reschedule(
    *,
    actor: User | None,
    appointment: Appointment,
    slot: Slot,
    channel: str = BookingChannel.API,
    as_patient: bool = False,
) -> Appointment:
    """Move a booked appointment to another slot in one transaction: the new seat is taken before the
    old one is released, so a failure leaves the original booking untouched.
    Locks the patient row, the appointment row, then both slot rows in id order."""
    try:
        with transaction.atomic():
            patient = _lock_patient(appointment.patient_id)
            appt = _lock_appointment(appointment.pk)
            if appt.status != AppointmentStatus.BOOKED:
                raise Conflict(
                    f"An appointment that is {appt.get_status_display().lower()} cannot be rescheduled.",
                    code="invalid_state",
                )
            if appt.slot_id == slot.pk:
                raise ValidationFailed(
                    "The appointment is already in this slot.", fields={"slot": "Choose a different slot."}
                )
            now = timezone.now()
            before = appointment_for_change(appt.pk)
            _check_patient_cutoff(actor, before, now, as_patient=as_patient)
            _check_patient_bookable(patient)
            locked = {
                s.pk: s
                for s in Slot.objects.select_for_update()
                .filter(pk__in=[slot.pk, appt.slot_id])
                .order_by("pk")
            }
            new_slot, old_slot = locked[slot.pk], locked[appt.slot_id]
            shown = slot_for_booking(new_slot.pk)
            _check_slot_bookable(new_slot, shown, patient, now)
            _check_no_overlap(patient, new_slot.start, new_slot.end, exclude_id=appt.pk)

            seat = _take_seat(new_slot)
            _release_seat(old_slot)
            previous = {"slot": old_slot.pk, "start": appt.start.isoformat(), "doctor": appt.doctor_id}
            appt.slot = new_slot
            appt.seat = seat
            appt.start, appt.end = new_slot.start, new_slot.end
            appt.doctor_id = new_slot.doctor_id
            appt.department_id = new_slot.department_id
            appt.clinic_id = new_slot.clinic_id
            appt.reschedule_count += 1
            _MOVE.update(appt)
            audit(
                actor=actor,
                action="appointment.rescheduled",
                obj=appt,
                organization_id=appt.organization_id,
                previous=previous,
                slot=new_slot.pk,
                channel=channel,
            )
            appt.clinic, appt.department, appt.doctor = shown.clinic, shown.department, shown.doctor
            appt.patient = patient
            # The doctor's and clinic's queues of whichever end of the move is today.
            queues = [*_today_queues(before, now), *_today_queues(shown, now)]
            events.publish(
                events.APPOINTMENT_RESCHEDULED,
                appointment_id=appt.pk,
                clinic_id=new_slot.clinic_id,
                doctor_id=new_slot.doctor_id,
                day=new_slot.date,
                start=new_slot.start,
                previous_slot_id=old_slot.pk,
                previous_clinic_id=old_slot.clinic_id,
                previous_day=old_slot.date,
                **queue_change(appt, action="rescheduled", queues=queues),
            )
            return appt
    except IntegrityError as exc:
        raise _conflict_from(exc) from exc
