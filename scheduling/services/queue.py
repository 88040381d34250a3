"""The day's queue: check-in with a token, call next, start, complete, no-show, skip, recall, priority.

A doctor's waiting line holds today's checked-in patients who have not been called, in this order:
priority first (NEWS2 medium or high, or a staff flag), then appointment time, then check-in time. Each
appointment keeps its place as `queue_key`, a string of digits that sorts in that order (queue_key()),
so the order is one ORDER BY and a skip is one write. "Calling" a patient sets called_at (they are asked
to the doctor's room); starting the consultation moves them to in_consultation.

Locks, always in this order: the doctor row (call-next only: one doctor's calls go one at a time) ->
appointment rows -> the department's TokenCounter (check-in) -> QueueVersion rows, in name order.

Versions: every change bumps the version of each live queue it touches ("doctor:<id>" for the doctor,
"clinic:<id>" for the waiting room) in the same transaction, and publishes QUEUE_CHANGED with the new
versions after commit; bookings, cancellations and moves that concern today do the same in their own
transaction and event (queue_change(), used by scheduling.services.booking). Because the counter row is
locked until commit, versions follow commit order and each names one committed state; an event that
never arrives shows up as a gap (scheduling.realtime).

Department pool: `queue_call_next(pool=True)` may take the first patient waiting in any of the doctor's
departments, whoever they were booked with. The appointment then moves to the calling doctor (its seat
stays in the slot it was booked in), so the consultation, the record and the statistics name the doctor
who saw the patient. Without `pool` a doctor calls only their own patients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.db import next_in_sequence, retry_on_deadlock
from opd.core.errors import Conflict, PermissionDenied
from opd.core.models import Role, User
from opd.core.tenancy import check_clinical_standing, clinic_ids_for

from ..models import ACTIVE_STATUSES, Appointment, AppointmentStatus, Doctor, QueueVersion, TokenCounter
from ..selectors import CLINIC_QUEUE, DOCTOR_QUEUE, queue_entry, queue_name, serving, waiting_line

# How many times call-next looks again when every candidate was taken under it.
MAX_CALL_ROUNDS = 10


def _lock(appointment: Appointment) -> Appointment:
    # No select_related: on MariaDB a locking read with a join locks the joined rows too, and every
    # queue change of a clinic would then wait on its one Clinic row.
    return Appointment.objects.select_for_update().get(pk=appointment.pk)


def _refuse_state(appt: Appointment, verb: str) -> Conflict:
    return Conflict(
        f"An appointment that is {appt.get_status_display().lower()} cannot be {verb}.", code="invalid_state"
    )


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S%f")


def queue_key(appt: Appointment) -> str:
    """Digits that sort in queue order: band (0 priority, 1 the rest), appointment time, check-in time
    (UTC, fixed width) and id as the last tie-break. Any key that extends another sorts right after it
    and before every key that is greater, which is how a skip puts a patient just behind another."""
    band = "0" if appt.is_priority else "1"
    return f"{band}{_stamp(appt.start)}{_stamp(appt.checked_in_at or appt.start)}{appt.pk:012d}"


def check_doctor_owns(actor: User | None, appt: Appointment) -> None:
    """A doctor acts only on their own appointments, and only while in clinical standing; staff and admins
    on any their door let them reach."""
    if actor is not None:
        check_clinical_standing(actor)
    if (
        actor is not None
        and not actor.is_superuser
        and actor.role == Role.DOCTOR
        and appt.doctor.user_id != actor.pk
    ):
        raise PermissionDenied("This appointment is assigned to another doctor.")


def _check_may_undo(actor: User | None, appt: Appointment, what: str) -> None:
    """Who may undo a no-show or a skip: whoever may mark one, the clinic's doctors (their own
    appointments, in standing), staff and admins; a superuser or the system anywhere."""
    if actor is not None and not actor.is_superuser:
        if actor.role not in (Role.DOCTOR, Role.STAFF, Role.ADMIN):
            raise PermissionDenied(f"Only the clinic's doctors and staff may undo a {what}.")
        clinics = clinic_ids_for(actor)
        if clinics is not None and appt.clinic_id not in clinics:
            raise PermissionDenied("This appointment is at another clinic.")
    check_doctor_owns(actor, appt)


def _bump_versions(queues: Iterable[str]) -> dict[str, int]:
    """Next version of each queue. Call inside the change's transaction: the counter rows stay locked
    until commit, always taken in name order so two changes never wait on each other in a cycle."""
    return {queue: next_in_sequence(QueueVersion, queue=queue) for queue in sorted(set(queues))}


def queues_of(*, clinic_id: int, doctor_ids: Iterable[int]) -> list[str]:
    """The live queues an appointment shows in: its clinic's waiting room and its doctor's (or doctors')."""
    return [queue_name(CLINIC_QUEUE, clinic_id), *(queue_name(DOCTOR_QUEUE, pk) for pk in doctor_ids)]


def queue_change(appt: Appointment, *, action: str, queues: Iterable[str]) -> dict[str, Any]:
    """Bump `queues` in the caller's transaction and describe the change for the live screens: the new
    versions, and the appointment as the doctor's queue (`entry`) and the waiting room (`public_entry`)
    show it. `appt` comes with its patient, department and doctor (with user) at hand.

    The entries are built here, under the change's locks, so each version is sent with exactly the state
    it names, and the broadcaster (scheduling.realtime) need not read anything back. No queues (a booking
    for another day): nothing is bumped and there is nothing to show."""
    versions = _bump_versions(queues)
    if not versions:
        return {"action": action, "versions": {}, "entry": None, "public_entry": None}
    return {
        "action": action,
        "versions": versions,
        "entry": queue_entry(appt),
        "public_entry": queue_entry(appt, public=True),
    }


def _changed(
    appt: Appointment,
    action: str,
    actor: User | None,
    *,
    doctor_ids: Iterable[int] = (),
    **data: Any,
) -> None:
    """Audit the change, bump the versions of the queues it touches (the appointment's doctor and clinic,
    and `doctor_ids`, e.g. the doctor a pooled patient was taken from), publish after commit."""
    audit(actor=actor, action=f"appointment.{action}", obj=appt, organization_id=appt.organization_id, **data)
    # The locking read took no related rows (see _lock): read what the screens show, without a lock.
    shown = Appointment.objects.select_related("patient", "department", "doctor__user", "slot").get(
        pk=appt.pk
    )
    events.publish(
        events.QUEUE_CHANGED,
        appointment_id=appt.pk,
        doctor_id=appt.doctor_id,
        clinic_id=appt.clinic_id,
        department_id=appt.department_id,
        day=shown.slot.date,
        **queue_change(
            shown,
            action=action,
            queues=queues_of(clinic_id=appt.clinic_id, doctor_ids={appt.doctor_id, *doctor_ids}),
        ),
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
        appt.queue_key = queue_key(appt)
        appt.save(
            update_fields=["token_number", "token_date", "status", "checked_in_at", "queue_key", "updated_at"]
        )
        _changed(appt, "checked_in", actor, token=appt.token_number)
    return appt


@retry_on_deadlock
def queue_call_next(
    *, actor: User | None, doctor: Doctor, pool: bool = False, now: dt.datetime | None = None
) -> Appointment:
    """Call the first patient of the doctor's waiting line (with `pool`, of their departments' line).

    Locks the doctor row, so two clicks of one doctor run one after the other and the second finds a
    patient already called (409). Candidates are then locked one at a time with SKIP LOCKED, so two
    doctors calling from one department at once take different patients; when every candidate is held
    by someone else it waits for the first and looks again, so "nobody waiting" is never said wrongly.
    """
    now = now or timezone.now()
    with transaction.atomic():
        doctor = Doctor.objects.select_for_update().select_related("user").get(pk=doctor.pk)
        if (
            actor is not None
            and not actor.is_superuser
            and actor.role == Role.DOCTOR
            and doctor.user_id != actor.pk
        ):
            raise PermissionDenied("Doctors call their own next patient.")
        if actor is not None:
            check_clinical_standing(actor)
        busy = serving(doctor, now=now).order_by("-called_at").first()
        if busy is not None:
            if busy.status == AppointmentStatus.IN_CONSULTATION:
                message = f"Token {busy.token_number} is still in consultation: complete it first."
            else:
                message = (
                    f"Token {busy.token_number} is already called: start, skip or mark them as no-show first."
                )
            raise Conflict(message, code="already_serving")
        appt = None
        for _ in range(MAX_CALL_ROUNDS):
            candidates = list(waiting_line(doctor, now=now, pool=pool).values_list("pk", flat=True)[:20])
            if not candidates:
                break
            for pk in candidates:
                appt = _lock_waiting(pk, skip_locked=True)
                if appt is not None:
                    break
            if appt is None:
                # Every candidate is being called by someone else: wait for the first, then look again.
                # The condition sits in the locking read so a row called meanwhile is let go at once.
                appt = _lock_waiting(candidates[0], skip_locked=False)
            if appt is not None:
                break
        if appt is None:
            raise Conflict("Nobody is waiting.", code="queue_empty")
        taken_from = appt.doctor_id
        appt.called_at = now
        fields = ["called_at", "updated_at"]
        if appt.doctor_id != doctor.pk:
            appt.doctor = doctor
            fields.append("doctor")
        appt.save(update_fields=fields)
        data = {"token": appt.token_number}
        if taken_from != doctor.pk:
            data["taken_from_doctor"] = taken_from
        _changed(appt, "called", actor, doctor_ids=[taken_from], **data)
    return appt


def _lock_waiting(pk: int, *, skip_locked: bool) -> Appointment | None:
    return (
        Appointment.objects.select_for_update(skip_locked=skip_locked)
        .filter(pk=pk, status=AppointmentStatus.CHECKED_IN, called_at__isnull=True)
        .first()
    )


@dataclass(frozen=True)
class Transition:
    """One step of an appointment's status through the day: from which states, to which, and which
    time stamp it sets. `verb` completes "An appointment that is <state> cannot be <verb>.". With
    `again_is_noop`, asking for the state it is already in answers the appointment as it is (starting a
    consultation twice is a double click); otherwise it is refused like any other state."""

    action: str
    verb: str
    sources: tuple[str, ...]
    target: str
    stamp: str
    again_is_noop: bool = False


START = Transition(
    "started",
    "started",
    (AppointmentStatus.CHECKED_IN,),
    AppointmentStatus.IN_CONSULTATION,
    "started_at",
    again_is_noop=True,
)
COMPLETE = Transition(
    "completed",
    "completed",
    (AppointmentStatus.IN_CONSULTATION,),
    AppointmentStatus.COMPLETED,
    "completed_at",
)
# A patient who did not come (or left before being seen). The seat stays counted: the time has passed.
NO_SHOW = Transition(
    "no_show",
    "marked as no-show",
    (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN),
    AppointmentStatus.NO_SHOW,
    "no_show_at",
)


# Checks asked before an appointment is completed, under its row lock. consultations registers one from
# its AppConfig.ready() (scheduling cannot import it): an appointment is completed only together with its
# consultation record, whichever door asks. A check refuses by raising (a Conflict).
CompletionCheck = Callable[[Appointment], None]
_completion_checks: list[CompletionCheck] = []


def appointment_completion_check_register(check: CompletionCheck) -> None:
    if check not in _completion_checks:
        _completion_checks.append(check)


@retry_on_deadlock
def appointment_transition(
    *, actor: User | None, appointment: Appointment, transition: Transition, now: dt.datetime | None = None
) -> Appointment:
    """Move the appointment along `transition`. Locks the appointment row, then the queue versions."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if transition.again_is_noop and appt.status == transition.target:
            return appt
        if appt.status not in transition.sources:
            raise _refuse_state(appt, transition.verb)
        if transition.target == AppointmentStatus.COMPLETED:
            for check in _completion_checks:
                check(appt)
        appt.status = transition.target
        setattr(appt, transition.stamp, now or timezone.now())
        appt.save(update_fields=["status", transition.stamp, "updated_at"])
        _changed(appt, transition.action, actor)
    return appt


def appointment_start(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """The doctor starts seeing a checked-in patient (called or not)."""
    return appointment_transition(actor=actor, appointment=appointment, transition=START, now=now)


def appointment_complete(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """Finish a consultation. Call it inside the consultation's own transaction to complete both at once."""
    return appointment_transition(actor=actor, appointment=appointment, transition=COMPLETE, now=now)


def appointment_mark_no_show(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """A booked or checked-in patient who did not come."""
    return appointment_transition(actor=actor, appointment=appointment, transition=NO_SHOW, now=now)


def undo_deadline(appt: Appointment) -> dt.datetime | None:
    """Until when the appointment's no-show may be undone (None: it is not a no-show)."""
    if appt.status != AppointmentStatus.NO_SHOW or appt.no_show_at is None:
        return None
    return appt.no_show_at + dt.timedelta(minutes=settings.OPD_UNDO_MINUTES)


def _undo_not_possible(message: str) -> Conflict:
    return Conflict(message, code="undo_not_possible")


@retry_on_deadlock
def appointment_undo_no_show(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """Take back a no-show marked by mistake: the appointment returns to the state it was marked from.

    The rule, checked under the appointment's row lock (then the patient's other appointments are only
    read; the queue versions are locked by _changed):
    * who: whoever may mark it (the appointment's doctor, admins and staff of its clinic; never a
      patient), in clinical standing;
    * when: at most OPD_UNDO_MINUTES (default 5) after `no_show_at`, the limit included; later answers
      409 `undo_expired`;
    * what: a patient marked after check-in goes back to the waiting line with the queue key they had,
      so they are where they were (first, if they had been called), but no longer called: the doctor
      may have called someone else since, and calls them again. The no-show kept the key, the token
      and the seat (a no-show holds its seat), so nothing can have taken them; a patient marked while
      booked goes back to booked;
    * refused with 409 `undo_not_possible` when restoring would be unsafe: it is no longer a no-show,
      the token's day is over in the clinic (the day closed), the patient now has another active
      appointment at an overlapping time or is checked in elsewhere (re-booked or re-queued), or a
      booked (never checked-in) appointment has already ended, which is where the no-show sweep marks
      them: undoing the sweep would only put back an appointment that can no longer be checked in and
      that the next sweep would mark again, so a swept no-show is never undone.
    Audited as `appointment.no_show_undone` with the status before and after; publishes QUEUE_CHANGED
    like the no-show did, so the live queues put the patient back."""
    now = now or timezone.now()
    with transaction.atomic():
        appt = _lock(appointment)
        _check_may_undo(actor, appt, "no-show")
        deadline, marked_at = undo_deadline(appt), appt.no_show_at
        if deadline is None or marked_at is None:
            raise _undo_not_possible(
                f"An appointment that is {appt.get_status_display().lower()} has no no-show to undo."
            )
        if now > deadline:
            raise Conflict(
                f"A no-show can be undone for {settings.OPD_UNDO_MINUTES} minutes only; this one was "
                f"marked at {marked_at.astimezone(appt.clinic.tz):%H:%M} ({appt.clinic.time_zone}).",
                code="undo_expired",
            )
        back_to = AppointmentStatus.CHECKED_IN if appt.checked_in_at else AppointmentStatus.BOOKED
        today = timezone.localtime(now, appt.clinic.tz).date()
        if back_to == AppointmentStatus.CHECKED_IN and appt.token_date != today:
            raise _undo_not_possible("The clinic's day of this token is over.")
        if back_to == AppointmentStatus.BOOKED and now >= appt.end:
            raise _undo_not_possible(
                "The appointment has ended and it was never checked in: book the patient again instead."
            )
        others = Appointment.objects.filter(patient_id=appt.patient_id).exclude(pk=appt.pk)
        if (
            others.filter(status__in=ACTIVE_STATUSES, start__lt=appt.end, end__gt=appt.start).exists()
            or others.filter(
                status__in=(AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULTATION),
                token_date=today,
            ).exists()
        ):
            raise _undo_not_possible(
                "The patient has been booked or checked in again since: undoing would put them in twice."
            )
        called_at = appt.called_at
        appt.status = back_to
        appt.no_show_at = None
        appt.called_at = None
        appt.save(update_fields=["status", "no_show_at", "called_at", "updated_at"])
        _changed(
            appt,
            "no_show_undone",
            actor,
            token=appt.token_number,
            before={
                "status": AppointmentStatus.NO_SHOW.value,
                "no_show_at": marked_at.isoformat(),
                "called_at": called_at.isoformat() if called_at else None,
            },
            after={"status": back_to.value, "no_show_at": None, "called_at": None},
        )
    return appt


@retry_on_deadlock
def appointment_skip(*, actor: User | None, appointment: Appointment) -> Appointment:
    """Send a called (or waiting) patient back behind the next one in the doctor's line, for instance
    when they are not there when called. With nobody behind them they stay first, no longer called.

    Locks the appointment row; the patient it goes behind is only read (their key does not change)."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if appt.status != AppointmentStatus.CHECKED_IN:
            raise _refuse_state(appt, "skipped")
        before = appt.queue_key
        line = waiting_line(appt.doctor, now=timezone.now()).exclude(pk=appt.pk)
        behind = line.filter(queue_key__gt=appt.queue_key).values_list("queue_key", flat=True).first()
        if behind is not None:
            appt.queue_key = f"{behind}0"
            longest = Appointment._meta.get_field("queue_key").max_length
            if longest is not None and len(appt.queue_key) > longest:
                raise Conflict("This patient was skipped too many times today.", code="too_many_skips")
        appt.called_at = None
        appt.skipped_at = timezone.now()
        appt.key_before_skip = before
        appt.save(update_fields=["queue_key", "called_at", "skipped_at", "key_before_skip", "updated_at"])
        _changed(appt, "skipped", actor, token=appt.token_number)
    return appt


def skip_undo_deadline(appt: Appointment) -> dt.datetime | None:
    """Until when the appointment's last skip may be undone (None: no skip to undo)."""
    if appt.status != AppointmentStatus.CHECKED_IN or appt.skipped_at is None or not appt.key_before_skip:
        return None
    return appt.skipped_at + dt.timedelta(minutes=settings.OPD_UNDO_MINUTES)


@retry_on_deadlock
def appointment_undo_skip(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """Take back the last skip: the patient gets back the place in the line they had before it.

    The rule, under the appointment's row lock: the same people as for a skip (the appointment's doctor,
    admins and staff of its clinic), at most OPD_UNDO_MINUTES after the skip (409 `undo_expired`
    later), and only while nothing has happened to them since (409 `undo_not_possible`): still waiting
    and not called again, not re-keyed by a priority change (which clears the skip), the token's day not
    over. A second skip replaces the first: only the last one is undone. The patient is not "called"
    again even if they were when skipped (the doctor may have called someone since): they are first
    in the line again and the doctor calls them. Audited as `appointment.skip_undone` with the keys
    before and after; publishes QUEUE_CHANGED."""
    now = now or timezone.now()
    with transaction.atomic():
        appt = _lock(appointment)
        _check_may_undo(actor, appt, "skip")
        deadline, skipped_at = skip_undo_deadline(appt), appt.skipped_at
        if deadline is None or skipped_at is None or appt.called_at is not None:
            raise _undo_not_possible("This patient has no skip to undo, or has been called since.")
        if now > deadline:
            raise Conflict(
                f"A skip can be undone for {settings.OPD_UNDO_MINUTES} minutes only; this one was at "
                f"{skipped_at.astimezone(appt.clinic.tz):%H:%M} ({appt.clinic.time_zone}).",
                code="undo_expired",
            )
        if appt.token_date != timezone.localtime(now, appt.clinic.tz).date():
            raise _undo_not_possible("The clinic's day of this token is over.")
        skipped_key = appt.queue_key
        appt.queue_key, appt.skipped_at, appt.key_before_skip = appt.key_before_skip, None, ""
        appt.save(update_fields=["queue_key", "skipped_at", "key_before_skip", "updated_at"])
        _changed(
            appt,
            "skip_undone",
            actor,
            token=appt.token_number,
            before={"queue_key": skipped_key, "skipped_at": skipped_at.isoformat()},
            after={"queue_key": appt.queue_key, "skipped_at": None},
        )
    return appt


@retry_on_deadlock
def appointment_recall(
    *, actor: User | None, appointment: Appointment, now: dt.datetime | None = None
) -> Appointment:
    """Call a called patient again: the waiting-room display announces the token once more."""
    with transaction.atomic():
        appt = _lock(appointment)
        check_doctor_owns(actor, appt)
        if appt.status != AppointmentStatus.CHECKED_IN or appt.called_at is None:
            raise Conflict(
                "Only a patient who has been called and not yet seen can be called again.",
                code="invalid_state",
            )
        appt.called_at = now or timezone.now()
        appt.save(update_fields=["called_at", "updated_at"])
        _changed(appt, "recalled", actor, token=appt.token_number)
    return appt


@retry_on_deadlock
def appointment_set_priority(
    *,
    actor: User | None,
    appointment: Appointment,
    is_priority: bool,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Appointment:
    """Flag (or unflag) a patient to be seen first: NEWS2 medium/high, or a staff decision. A waiting
    patient takes the place the rules give them (a skip is forgotten). `details` go into the audit event
    (the NEWS2 band before and after, when a score moved the patient up)."""
    with transaction.atomic():
        appt = _lock(appointment)
        if appt.is_priority == is_priority and appt.priority_reason == reason:
            return appt
        appt.is_priority = is_priority
        appt.priority_reason = reason if is_priority else ""
        fields = ["is_priority", "priority_reason", "updated_at"]
        if appt.status == AppointmentStatus.CHECKED_IN:
            appt.queue_key = queue_key(appt)
            # The new key forgets any skip, so an undo of it would put back a place that no longer holds.
            appt.skipped_at, appt.key_before_skip = None, ""
            fields += ["queue_key", "skipped_at", "key_before_skip"]
        appt.save(update_fields=fields)
        _changed(appt, "priority", actor, is_priority=is_priority, reason=reason, **(details or {}))
    return appt
