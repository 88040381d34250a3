"""Triage: vitals a nurse takes while a checked-in patient waits, NEWS2 from them, and what follows.

Who may record (check_may_triage): a staff member who is a nurse at the appointment's clinic
(opd.core Membership.is_nurse), a doctor of that clinic in clinical standing, a superuser. Reception-only
staff, admins and patients are refused (403); another organization's appointment is 404; an appointment
that is not checked in and waiting (booked, in consultation, done) is 409.

What a new set does, in one transaction (the appointment row locked first, as every queue change does):
the observation is stored with its NEWS2; a medium or high band, or a single parameter scoring 3, moves
the patient up the queue at once (scheduling's appointment_set_priority: audited with the band before and
after, pushed to the doctor's dashboard and the waiting room); a rise to an urgent or emergency response
alerts the doctor's socket (news2_alerts.news2_alert).

Re-score: a waiting patient's latest observation is due again after OPD_NEWS2_RESCORE_MINUTES for its
response level; triage_rescore_reminders (the beat task consultations.news2_rescore_reminders) claims
each stale observation once and pushes a reminder to the clinic's queue socket (the triage page).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.db import retry_on_deadlock
from opd.core.errors import Conflict, NotFound, PermissionDenied
from opd.core.models import Role, User
from opd.core.services import validate_model
from opd.core.tenancy import check_clinical_standing, clinic_ids_for, nurse_clinic_ids_for
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_set_priority

from .. import news2
from ..models import VITAL_FIELDS, News2Band, TriageObservation
from .common import SET_BY_SERVICE, check_fields
from .consultations import _apply_news2
from .news2_alerts import alert_payload, latest_triage, news2_alert, response_level

TRIAGE_FIELDS = VITAL_FIELDS
# Moves the patient up: medium (5-6), high (7+), or low-medium (a single parameter scoring 3).
TRIAGE_PRIORITY_BANDS = (News2Band.LOW_MEDIUM, News2Band.MEDIUM, News2Band.HIGH)
NOT_A_NURSE = "Only nurses at this clinic and its doctors record triage vitals."


def may_triage_at(user: User, clinic_id: int) -> bool:
    """Whether `user` records (and reads) triage at the clinic: a nurse there, a doctor there in clinical
    standing, a superuser."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if user.role == Role.DOCTOR:
        clinics = clinic_ids_for(user)  # empty without clinical standing
        return clinics is not None and clinic_id in clinics
    nurse_at = nurse_clinic_ids_for(user)
    return nurse_at is None or clinic_id in nurse_at


def check_may_triage(actor: User | None, appointment: Appointment) -> None:
    if actor is None:
        raise PermissionDenied(NOT_A_NURSE)
    if not actor.is_superuser and actor.organization_id != appointment.organization_id:
        raise NotFound("No such appointment.")
    check_clinical_standing(actor)
    if not may_triage_at(actor, appointment.clinic_id):
        raise PermissionDenied(NOT_A_NURSE, code="not_a_nurse")


def _band_label(band: str) -> str:
    return News2Band(band).label if band else "none"


@retry_on_deadlock
def triage_record(*, actor: User, appointment: Appointment, **vitals: Any) -> TriageObservation:
    """Record a set of vitals for a checked-in, waiting patient (module docstring: who, and what follows).

    Locks the appointment row: a check-in, a call or a consultation opening at the same moment is settled
    before or after, never half-way (a patient called in meanwhile is 409)."""
    check_fields(vitals, TRIAGE_FIELDS)
    check_may_triage(actor, appointment)
    with transaction.atomic():
        appt = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appt.status != AppointmentStatus.CHECKED_IN:
            state = appt.get_status_display().lower()
            raise Conflict(
                f"Triage vitals are taken while a checked-in patient waits; this appointment is {state}.",
                fields={"appointment": f"The appointment is {state}."},
                code="not_waiting",
            )
        previous = latest_triage(appt.pk)
        observation = TriageObservation(
            organization_id=appt.organization_id,
            clinic_id=appt.clinic_id,
            appointment=appt,
            patient_id=appt.patient_id,
            recorded_by=actor,
            recorded_at=timezone.now(),
            **vitals,
        )
        validate_model(observation, exclude=[*SET_BY_SERVICE, "recorded_by"])
        _apply_news2(observation)  # type: ignore[arg-type]  # the same NEWS2 columns as a consultation
        observation.save()
        audit(
            actor=actor,
            action="triage.recorded",
            obj=observation,
            organization_id=appt.organization_id,
            clinic_id=appt.clinic_id,
            patient_id=appt.patient_id,
            appointment=appt.pk,
            fields=sorted(name for name, value in vitals.items() if value not in (None, "")),
            news2_total=observation.news2_total,
            news2_band=observation.news2_band,
        )
        old_band = previous.news2_band if previous is not None else ""
        if observation.news2_band in TRIAGE_PRIORITY_BANDS:
            appointment_set_priority(
                actor=actor,
                appointment=appt,
                is_priority=True,
                reason=f"NEWS2 {_band_label(observation.news2_band).lower()} ({observation.news2_total})",
                details={"source": "triage", "old_band": old_band, "new_band": observation.news2_band},
            )
        news2_alert(
            actor=actor,
            appointment=appt,
            scored=observation,
            before=response_level(previous),
            source="triage",
        )
    return observation


def triage_vitals_prefill(appointment_id: int) -> dict[str, Any]:
    """The latest triage set as a consultation's opening vitals (with its NEWS2 and its time), or {}."""
    latest = latest_triage(appointment_id)
    if latest is None:
        return {}
    names = (*VITAL_FIELDS, *(f"news2_{name}" for name in news2.PARAMETERS), "news2_spo2_scale")
    return {
        **{name: getattr(latest, name) for name in names},
        "news2_total": latest.news2_total,
        "news2_band": latest.news2_band,
        "vitals_recorded_at": latest.recorded_at,
    }


def rescore_interval(level: str | None) -> dt.timedelta:
    """How long a waiting patient's observations hold at `level` (none: the routine interval)."""
    minutes: dict[str, int] = settings.OPD_NEWS2_RESCORE_MINUTES
    return dt.timedelta(minutes=minutes[level or news2.ROUTINE])


def is_rescore_due(observation: TriageObservation, *, now: dt.datetime) -> bool:
    return observation.recorded_at + rescore_interval(response_level(observation)) <= now


def triage_rescore_reminders(*, now: dt.datetime | None = None) -> int:
    """Remind the clinic's queue (the nurses' triage page) of each checked-in, waiting patient whose latest
    observation is older than its level's interval: once per observation, claimed by a conditional update
    (two beat runs or two workers at once send one reminder). Answers how many were sent."""
    now = now or timezone.now()
    latest = TriageObservation.objects.filter(appointment_id=OuterRef("appointment_id")).order_by(
        "-recorded_at", "-id"
    )
    candidates = (
        TriageObservation.objects.filter(
            appointment__status=AppointmentStatus.CHECKED_IN,
            appointment__called_at__isnull=True,
            rescore_reminded_at__isnull=True,
            recorded_at__lte=now - min_rescore_interval(),
        )
        .filter(pk=Subquery(latest.values("pk")[:1]))
        .select_related("appointment__patient", "appointment__department", "appointment__clinic")
    )
    sent = 0
    for observation in candidates:
        if not is_rescore_due(observation, now=now):
            continue
        with transaction.atomic():
            claimed = TriageObservation.objects.filter(
                pk=observation.pk, rescore_reminded_at__isnull=True
            ).update(rescore_reminded_at=now)
            if not claimed:
                continue
            appt = observation.appointment
            level = response_level(observation)
            events.publish(
                events.QUEUE_ALERT,
                appointment_id=appt.pk,
                doctor_id=None,
                clinic_id=appt.clinic_id,
                alert=alert_payload(
                    kind="rescore_due",
                    appointment=appt,
                    level=level or news2.ROUTINE,
                    title="Observations due",
                    action=f"Re-score NEWS2: the last observations were taken at "
                    f"{timezone.localtime(observation.recorded_at, appt.clinic.tz):%H:%M}.",
                    news2_total=observation.news2_total,
                    news2_band=observation.news2_band,
                ),
            )
            sent += 1
    return sent


def min_rescore_interval() -> dt.timedelta:
    minutes: dict[str, int] = settings.OPD_NEWS2_RESCORE_MINUTES
    return dt.timedelta(minutes=min(minutes.values()))
