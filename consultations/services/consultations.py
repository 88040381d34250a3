"""Consultations: open (with the appointment's start), edit a draft (NEWS2 and queue priority), complete
(with the appointment), and addenda once completed.

Locks, always in this order: the appointment row, then the consultation row (scheduling's queue
services also take the appointment first, so a consultation write and a queue change never wait on
each other in a cycle). Locking queries never join: MariaDB's FOR UPDATE would lock the joined rows too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.audit import changes as field_changes
from opd.core.db import retry_on_deadlock
from opd.core.errors import Conflict, ValidationFailed
from opd.core.models import User
from opd.core.services import validate_model
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_complete, appointment_set_priority, appointment_start
from scheduling.services.queue import check_doctor_owns

from .. import news2
from ..models import (
    NEWS2_SCORE_FIELDS,
    NOTE_FIELDS,
    VITAL_FIELDS,
    Addendum,
    Consultation,
    ConsultationStatus,
    News2Band,
    Prescription,
)
from .common import (
    SET_BY_SERVICE,
    bump_version,
    check_doctor,
    check_draft,
    check_fields,
    check_owner,
    check_same_organization,
    check_version,
    lock,
)
from .news2_alerts import latest_triage, news2_alert, response_level

OPENABLE = (AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULTATION)
CONSULTATION_FIELDS = NOTE_FIELDS + VITAL_FIELDS
PRIORITY_BANDS = (News2Band.MEDIUM, News2Band.HIGH)
TEXT_FIELDS = ("chief_complaint", "history", "examination", "assessment", "plan", "vitals_not_taken_reason")
RECORD_INCOMPLETE = "record_incomplete"
# Appointments are completed through their consultation (consultation_complete); scheduling asks this
# before completing one by any other door (registered in ConsultationsConfig.ready()).
CONSULTATION_REQUIRED = "consultation_required"


def _already_open(appointment_id: int) -> Conflict:
    existing = Consultation.objects.filter(appointment_id=appointment_id).values_list("pk", flat=True).first()
    return Conflict(
        f"This appointment already has a consultation (#{existing}); open that one instead.",
        fields={"appointment": "Already has a consultation."},
        code="consultation_exists",
    )


@retry_on_deadlock
def consultation_open(*, actor: User, appointment: Appointment) -> Consultation:
    """Open the consultation of a checked-in appointment (or one already in consultation) and start it.

    Locks the appointment row: two clicks queue on it and the second finds the first's consultation
    (409). The unique key on consultation.appointment is the backstop; its IntegrityError is a 409 too.
    """
    check_doctor(actor)
    try:
        with transaction.atomic():
            appt = Appointment.objects.select_for_update().get(pk=appointment.pk)
            check_same_organization(actor, appt.organization_id, "appointment")
            check_doctor_owns(actor, appt)
            if Consultation.objects.filter(appointment_id=appt.pk).exists():
                raise _already_open(appt.pk)
            if appt.status not in OPENABLE:
                raise Conflict(
                    "A consultation is opened for a checked-in patient; this appointment is "
                    f"{appt.get_status_display().lower()}.",
                    fields={"appointment": f"The appointment is {appt.get_status_display().lower()}."},
                    code="invalid_state",
                )
            appt = appointment_start(actor=actor, appointment=appt)
            # The nurse's latest triage vitals (and their NEWS2 and time) open the record: the doctor
            # starts from them and corrects what changed.
            prefill = _triage_prefill(appt.pk)
            consultation = Consultation.objects.create(
                organization_id=appt.organization_id,
                clinic_id=appt.clinic_id,
                appointment=appt,
                doctor_id=appt.doctor_id,
                patient_id=appt.patient_id,
                started_at=timezone.now(),
                **prefill,
            )
            audit(
                actor=actor,
                action="consultation.opened",
                obj=consultation,
                organization_id=consultation.organization_id,
                appointment=appt.pk,
                vitals_from_triage=bool(prefill),
            )
    except IntegrityError as exc:
        if Consultation.objects.filter(appointment_id=appointment.pk).exists():
            raise _already_open(appointment.pk) from exc
        raise
    return consultation


def _triage_prefill(appointment_id: int) -> dict[str, Any]:
    from .triage import triage_vitals_prefill  # triage builds on this module

    return triage_vitals_prefill(appointment_id)


def _apply_news2(consultation: Consultation) -> None:
    score = news2.score(consultation.observations)
    if score is None:
        for name in (*NEWS2_SCORE_FIELDS, "news2_spo2_scale", "news2_total"):
            setattr(consultation, name, None)
        consultation.news2_band = ""
        return
    for name, value in score.sub_scores.items():
        setattr(consultation, f"news2_{name}", value)
    consultation.news2_spo2_scale = score.spo2_scale
    consultation.news2_total = score.total
    consultation.news2_band = score.band


def _apply_changes(
    *, actor: User, appointment: Appointment, current: Consultation, changes: dict[str, Any]
) -> list[str]:
    """Write `changes` to the locked draft (NEWS2 and queue priority with the vitals) and audit them; the
    names of the fields that changed (none: nothing written, the version stays)."""
    if isinstance(changes.get("diagnosis_code"), str):
        changes["diagnosis_code"] = changes["diagnosis_code"].strip().upper()
    for text_field in TEXT_FIELDS:
        if isinstance(changes.get(text_field), str):
            changes[text_field] = changes[text_field].strip()
    changed = [name for name, value in changes.items() if getattr(current, name) != value]
    if not changed:
        return []
    before = {name: getattr(current, name) for name in changed}
    for name in changed:
        setattr(current, name, changes[name])
    validate_model(current, exclude=SET_BY_SERVICE)
    update_fields = [*changed, "version", "updated_at"]
    vitals_changed = any(name in VITAL_FIELDS for name in changed)
    # The response level before this write (the draft's own score, else the nurse's at triage): an
    # alert goes to the doctor's socket only when the new vitals raise it (news2_alerts).
    level_before = response_level(current) if current.news2_total is not None else None
    if level_before is None and vitals_changed:
        level_before = response_level(latest_triage(appointment.pk))
    if vitals_changed:
        if current.vitals_recorded_at is not None:
            # The earlier vitals' day loses this consultation's NEWS2 band (statistics listen).
            events.publish(
                events.CLINICAL_DAY_CHANGED,
                clinic_id=current.clinic_id,
                day=timezone.localdate(current.vitals_recorded_at, timezone=appointment.clinic.tz),
            )
        current.vitals_recorded_at = timezone.now()
        _apply_news2(current)
        update_fields += ["vitals_recorded_at", *NEWS2_SCORE_FIELDS, "news2_spo2_scale", "news2_total"]
        update_fields.append("news2_band")
    version = bump_version(current)
    current.save(update_fields=update_fields)
    if vitals_changed and current.news2_band in PRIORITY_BANDS:
        appointment_set_priority(
            actor=actor,
            appointment=appointment,
            is_priority=True,
            reason=f"NEWS2 {current.news2_band} ({current.news2_total})",
        )
    if vitals_changed:
        news2_alert(
            actor=actor, appointment=appointment, scored=current, before=level_before, source="consultation"
        )
    audit(
        actor=actor,
        action="consultation.updated",
        obj=current,
        organization_id=current.organization_id,
        fields=changed,
        # The note fields are kept as lengths and keyed fingerprints (encrypted at rest; the trail is not).
        changes=field_changes(before, current, changed),
        news2_total=current.news2_total,
        news2_band=current.news2_band,
        version=version,
    )
    return changed


@retry_on_deadlock
def consultation_update(
    *, actor: User, consultation: Consultation, expected_version: int | None = None, **changes: Any
) -> Consultation:
    """Edit a draft's notes and vitals. Writing vitals recomputes and stores NEWS2; a medium or high
    band marks the appointment as priority for the live queue in the same transaction. (A lower band
    later does not unmark it: staff may have flagged the patient for another reason.)

    `expected_version`: the version the writer last saw; another one is a 409 `version_conflict` naming
    what changed since, and nothing is written (common.check_version). A write that changes something
    bumps the version; one that changes nothing writes nothing and keeps it."""
    check_fields(changes, CONSULTATION_FIELDS)
    with transaction.atomic():
        appointment, current = lock(consultation)
        check_owner(actor, current)
        check_draft(current)
        check_version(current, expected_version)
        _apply_changes(actor=actor, appointment=appointment, current=current, changes=changes)
    return current


def missing_from_record(consultation: Consultation) -> dict[str, str]:
    """The minimum record a consultation is completed with, as {field: what to do} for each part missing:
    vitals with a NEWS2 (or the reason they were not taken), an assessment or diagnosis, a plan."""
    missing = {}
    if consultation.news2_total is None and not consultation.vitals_not_taken_reason.strip():
        still = ", ".join(consultation.news2_missing)
        missing["vitals"] = (
            f"Record the vitals for a NEWS2 (still missing: {still}), or why they were not taken."
        )
    if not consultation.assessment.strip() and not consultation.diagnosis_code:
        missing["assessment"] = "Record an assessment or a diagnosis (or its ICD-10 code)."
    if not consultation.plan.strip():
        missing["plan"] = "Record the plan."
    return missing


@retry_on_deadlock
def consultation_complete(
    *,
    actor: User,
    consultation: Consultation,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
    **final_values: Any,
) -> Consultation:
    """Save `final_values` (any notes and vitals, as consultation_update takes them), check the minimum
    record, then complete the consultation and its appointment and issue its prescriptions: one
    transaction, so what the doctor last typed is what is completed, or nothing is written at all.

    Refused, writing nothing: a stale `expected_version` (409 `version_conflict`); invalid values (400,
    naming the fields); an incomplete record (400 `record_incomplete`, naming each missing part:
    missing_from_record); an appointment that cannot be completed (409). `now`: for seeding and tests."""
    check_fields(final_values, CONSULTATION_FIELDS)
    with transaction.atomic():
        appointment, current = lock(consultation)
        check_owner(actor, current)
        check_draft(current)
        check_version(current, expected_version)
        _apply_changes(actor=actor, appointment=appointment, current=current, changes=final_values)
        missing = missing_from_record(current)
        if missing:
            raise ValidationFailed(
                "The record is not complete: " + " ".join(missing.values()) + " Nothing was saved.",
                fields=missing,
                code=RECORD_INCOMPLETE,
            )
        now = now or timezone.now()
        current.status = ConsultationStatus.COMPLETED
        current.completed_at = now
        version = bump_version(current)
        current.save(update_fields=["status", "completed_at", "version", "updated_at"])
        Prescription.objects.filter(consultation=current, issued_at__isnull=True).update(
            issued_at=now, updated_at=now
        )
        appointment_complete(actor=actor, appointment=appointment, now=now)
        audit(
            actor=actor,
            action="consultation.completed",
            obj=current,
            organization_id=current.organization_id,
            version=version,
        )
    return current


def check_appointment_completable(appointment: Appointment) -> None:
    """scheduling's completion check: an appointment is completed only with its consultation, which
    consultation_complete completes first in the same transaction. Every other door (the dashboard's
    button, the API's complete action, a script) is refused with a message that points to the record."""
    consultation = Consultation.objects.filter(appointment_id=appointment.pk).only("pk", "status").first()
    if consultation is not None and consultation.status == ConsultationStatus.COMPLETED:
        return
    if consultation is None:
        message = (
            "An appointment is completed with its consultation record: open the consultation, record "
            "the visit, and complete it there."
        )
    else:
        message = (
            f"An appointment is completed with its consultation record: complete consultation "
            f"#{consultation.pk} (its Complete button saves and checks the record)."
        )
    raise Conflict(message, fields={"consultation": message}, code=CONSULTATION_REQUIRED)


def addendum_create(*, actor: User, consultation: Consultation, text: str) -> Addendum:
    """Append a correction or later note to a completed consultation; the original never changes."""
    check_owner(actor, consultation)
    if consultation.status != ConsultationStatus.COMPLETED:
        raise Conflict(
            "The consultation is still a draft: edit it directly. Addenda are for completed ones.",
            code="consultation_draft",
        )
    addendum = Addendum(consultation=consultation, author=actor, text=(text or "").strip())
    validate_model(addendum, exclude=SET_BY_SERVICE)
    with transaction.atomic():
        addendum.save()
        audit(
            actor=actor,
            action="consultation.addendum",
            obj=consultation,
            organization_id=consultation.organization_id,
            addendum=addendum.pk,
        )
    return addendum
