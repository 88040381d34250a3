from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import ForeignObjectRel
from django.utils import timezone

from opd.core.audit import audit, changes
from opd.core.db import next_in_sequence, retry_on_deadlock
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AccessGrant, Clinic, Organization, Role, User
from opd.core.services import validate_model
from opd.core.tenancy import check_clinical_standing

from .duplicates import Candidate, possible_duplicates
from .models import (
    Allergy,
    AllergyStatus,
    Medication,
    MedicationStatus,
    MrnSequence,
    Patient,
    PatientStatus,
    Problem,
    ProblemStatus,
)
from .phones import PHONE_FIELDS, normalise_phone_fields, phone_region_for

EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "address",
    "emergency_contact_name",
    "emergency_contact_phone",
    "insurance_provider",
    "insurance_policy_number",
)


def digits_only(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def _next_mrn(organization_id: int) -> str:
    return f"P{next_in_sequence(MrnSequence, organization_id=organization_id):08d}"


class PossibleDuplicate(Conflict):
    """Registration refused (409 `possible_duplicate`) because the organization may already know this
    person; `candidates` says who. Registering anyway takes an explicit confirm_new_patient."""

    code = "possible_duplicate"

    def __init__(self, candidates: list[Candidate]):
        self.candidates = candidates
        message = (
            f"This person may already be registered ({len(candidates)} possible "
            f"match{'es' if len(candidates) != 1 else ''}: same date of birth and a similar name, or the "
            "same phone number). Open the existing record; register again only if this is a new patient."
        )
        super().__init__(message, fields={"confirm_new_patient": ["Confirm that this is a new patient."]})


@retry_on_deadlock  # the very first registrations of an organization race to create its sequence row
def patient_create(
    *,
    actor: User | None,
    organization: Organization,
    registered_at_clinic: Clinic | None = None,
    user: User | None = None,
    confirm_new_patient: bool = False,
    flag_possible_duplicate: bool = False,
    **fields: Any,
) -> Patient:
    """Register a patient. Someone of the organization with the same date of birth and a similar name,
    or the same phone number, makes it a possible duplicate (patients.duplicates): refused with the
    candidates (PossibleDuplicate) unless the caller confirms a new patient; or, where the caller may
    not show the candidates (a portal sign-up), registered with `duplicate_review` set for reception.
    Two desks registering one person at the same instant can both pass: patient_merge mends that."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    if registered_at_clinic is not None and registered_at_clinic.organization_id != organization.pk:
        raise ValidationFailed(
            "The clinic belongs to another organization.", fields={"registered_at_clinic": "Unknown clinic."}
        )
    normalise_phone_fields(fields, phone_region_for(Clinic, organization.pk, registered_at_clinic))
    patient = Patient(
        organization=organization, registered_at_clinic=registered_at_clinic, user=user, **fields
    )
    validate_model(patient, exclude=["mrn"])
    candidates = possible_duplicates(
        organization_id=organization.pk,
        first_name=patient.first_name,
        last_name=patient.last_name,
        date_of_birth=patient.date_of_birth,
        phone=patient.phone,
    )
    if candidates and not confirm_new_patient:
        if not flag_possible_duplicate:
            raise PossibleDuplicate(candidates)
        patient.duplicate_review = True
    extra: dict[str, Any] = {}
    if candidates:
        # Who it looked like, by record id: the trail shows a duplicate was seen and waved through.
        extra = {
            "possible_duplicates": [c.patient.pk for c in candidates],
            "confirmed_new_patient": confirm_new_patient,
        }
    with transaction.atomic():
        patient.mrn = _next_mrn(organization.pk)
        patient.save()
        audit(actor=actor, action="patient.registered", obj=patient, organization_id=organization.pk, **extra)
    return patient


def patient_update(*, actor: User | None, patient: Patient, **fields: Any) -> Patient:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    _refuse_merged_row(patient)
    if any(name in fields for name in PHONE_FIELDS):
        region = phone_region_for(Clinic, patient.organization_id, patient.registered_at_clinic)
        normalise_phone_fields(fields, region, current=patient)
    changed = {name: value for name, value in fields.items() if getattr(patient, name) != value}
    if not changed:
        return patient
    before = {name: getattr(patient, name) for name in changed}
    for name, value in changed.items():
        setattr(patient, name, value)
    validate_model(patient, exclude=["mrn"])
    with transaction.atomic():
        # The blind indexes are computed from phone and policy number on save (opd.core.fields).
        patient.save(update_fields=[*changed, "phone_index", "insurance_index", "updated_at"])
        audit(
            actor=actor,
            action="patient.updated",
            obj=patient,
            organization_id=patient.organization_id,
            patient_id=patient.pk,
            fields=sorted(changed),
            # Identifiers and contact details are kept as lengths and keyed fingerprints, not values.
            changes=changes(before, patient, sorted(changed), redacted={"email"}),
        )
    return patient


def patient_set_status(*, actor: User | None, patient: Patient, status: str) -> Patient:
    """Deactivate or reactivate; a patient is never deleted. A merged record stays merged."""
    _refuse_merged_row(patient)
    if status not in PatientStatus.values or status == PatientStatus.MERGED:
        raise ValidationFailed("Unknown status.", fields={"status": "Choose one of active, inactive."})
    if patient.status == status:
        return patient
    with transaction.atomic():
        patient.status = status
        patient.save(update_fields=["status", "updated_at"])
        audit(actor=actor, action=f"patient.{status}", obj=patient, organization_id=patient.organization_id)
    return patient


# Allergies ---------------------------------------------------------------------------------------------

ALLERGY_FIELDS = ("substance", "category", "reaction", "severity", "status")
# The reaction is clinical free text: the audit trail keeps its length and a keyed fingerprint only.
ALLERGY_REDACTED = {"reaction"}


def check_allergy_writer(actor: User | None, organization_id: int, *, what: str = "allergies") -> User:
    """Clinical roles record allergies, problems and medications: doctors in clinical standing and staff
    (nurses, reception, who take the history at the desk); superusers for the admin. Administrators run
    the organization and patients tell their clinician: both are refused."""
    if actor is None or not (actor.is_superuser or actor.role in (Role.DOCTOR, Role.STAFF)):
        raise PermissionDenied(f"Only doctors and clinic staff record {what}.")
    check_clinical_standing(actor)
    if not actor.is_superuser and actor.organization_id != organization_id:
        raise NotFound("No such patient.")
    return actor


def _clean_substance(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _lock_patient(patient: Patient) -> Patient:
    # The patient row serialises "no known allergies" against recording an allergy: neither may
    # land on a record the other just changed.
    return Patient.objects.select_for_update().get(pk=patient.pk)


def allergy_record(
    *,
    actor: User | None,
    patient: Patient,
    substance: str,
    category: str,
    severity: str,
    reaction: str = "",
    status: str = AllergyStatus.ACTIVE,
) -> Allergy:
    """Record an allergy or intolerance. An active one clears a "no known allergies" statement."""
    writer = check_allergy_writer(actor, patient.organization_id)
    allergy = Allergy(
        organization_id=patient.organization_id,
        patient=patient,
        substance=_clean_substance(substance),
        category=category,
        severity=severity,
        reaction=(reaction or "").strip(),
        status=status,
        recorded_by=writer if writer.pk else None,
        recorded_at=timezone.now(),
    )
    validate_model(allergy, exclude=["organization", "patient", "recorded_by"])
    with transaction.atomic():
        current = _lock_patient(patient)
        allergy.save()
        audit(
            actor=actor,
            action="allergy.recorded",
            obj=allergy,
            organization_id=allergy.organization_id,
            patient_id=patient.pk,
            changes=changes(
                dict.fromkeys(ALLERGY_FIELDS), allergy, ALLERGY_FIELDS, redacted=ALLERGY_REDACTED
            ),
        )
        if allergy.is_active and current.no_known_allergies_at is not None:
            _clear_no_known_allergies(actor, current, reason=f"allergy {allergy.pk} recorded")
    patient.no_known_allergies_at, patient.no_known_allergies_by_id = None, None
    return allergy


def allergy_update(*, actor: User | None, allergy: Allergy, **fields: Any) -> Allergy:
    """Change an allergy: its details, or its status (inactive, entered in error). Never deleted."""
    check_allergy_writer(actor, allergy.organization_id)
    unknown = set(fields) - set(ALLERGY_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
    if "substance" in fields:
        fields["substance"] = _clean_substance(fields["substance"])
    if isinstance(fields.get("reaction"), str):
        fields["reaction"] = fields["reaction"].strip()
    with transaction.atomic():
        patient = _lock_patient(allergy.patient)
        current = Allergy.objects.select_for_update().get(pk=allergy.pk)
        changed = {name: value for name, value in fields.items() if getattr(current, name) != value}
        if not changed:
            return current
        before = {name: getattr(current, name) for name in changed}
        for name, value in changed.items():
            setattr(current, name, value)
        validate_model(current, exclude=["organization", "patient", "recorded_by"])
        current.save(update_fields=[*changed, "updated_at"])
        audit(
            actor=actor,
            action="allergy.updated",
            obj=current,
            organization_id=current.organization_id,
            patient_id=current.patient_id,
            fields=sorted(changed),
            changes=changes(before, current, sorted(changed), redacted=ALLERGY_REDACTED),
        )
        if current.is_active and patient.no_known_allergies_at is not None:
            _clear_no_known_allergies(actor, patient, reason=f"allergy {current.pk} active")
    return current


def _clear_no_known_allergies(actor: User | None, patient: Patient, *, reason: str) -> None:
    before = {
        "no_known_allergies_at": patient.no_known_allergies_at,
        "no_known_allergies_by": patient.no_known_allergies_by_id,
    }
    Patient.objects.filter(pk=patient.pk).update(no_known_allergies_at=None, no_known_allergies_by=None)
    audit(
        actor=actor,
        action="patient.no_known_allergies_cleared",
        obj=patient,
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        cause=reason,
        changes=changes(before, {"no_known_allergies_at": None, "no_known_allergies_by": None}, before),
    )


def allergy_set_no_known_allergies(*, actor: User | None, patient: Patient) -> Patient:
    """Record that the patient was asked and has no known allergies (who and when). Refused (409
    `active_allergies`) while an active allergy is on the record: mark it inactive or entered in error
    first. Saying it again renews who and when."""
    writer = check_allergy_writer(actor, patient.organization_id)
    with transaction.atomic():
        current = _lock_patient(patient)
        active = list(
            Allergy.objects.filter(patient=current, status=AllergyStatus.ACTIVE).values_list(
                "substance", flat=True
            )
        )
        if active:
            raise Conflict(
                f"The patient has active allergies ({', '.join(active)}): mark them inactive or entered "
                "in error before recording no known allergies.",
                code="active_allergies",
            )
        before = {
            "no_known_allergies_at": current.no_known_allergies_at,
            "no_known_allergies_by": current.no_known_allergies_by_id,
        }
        current.no_known_allergies_at = timezone.now()
        current.no_known_allergies_by = writer if writer.pk else None
        current.save(update_fields=["no_known_allergies_at", "no_known_allergies_by", "updated_at"])
        audit(
            actor=actor,
            action="patient.no_known_allergies",
            obj=current,
            organization_id=current.organization_id,
            patient_id=current.pk,
            changes=changes(
                before,
                {
                    "no_known_allergies_at": current.no_known_allergies_at,
                    "no_known_allergies_by": current.no_known_allergies_by_id,
                },
                before,
            ),
        )
    return current


# Problems and current medications ---------------------------------------------------------------------
# The same writers as allergies (check_allergy_writer) and the same shape: recorded with who and when,
# changed field by field, never deleted, every write audited with clinical free text redacted.

PROBLEM_FIELDS = ("description", "icd10_code", "status", "onset_date", "resolved_date")
PROBLEM_REDACTED = {"description"}
MEDICATION_FIELDS = ("name", "dose", "frequency", "status", "started_on", "stopped_on")

_Entry = TypeVar("_Entry", Problem, Medication)


def normalize_icd10(value: Any) -> Any:
    """Upper case without spaces, and the dot put back after the category: "e119" and " E11.9" are
    "E11.9". Anything that is not code-shaped is returned as typed, for the validator to name."""
    if not isinstance(value, str):
        return value
    code = "".join(value.split()).upper()
    if len(code) > 3 and "." not in code:
        code = f"{code[:3]}.{code[3:]}"
    return code


def _clean_text(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _clean_problem_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if "description" in fields:
        fields["description"] = _clean_text(fields["description"])
    if "icd10_code" in fields:
        fields["icd10_code"] = normalize_icd10(fields["icd10_code"] or "")
    return fields


def _clean_medication_fields(fields: dict[str, Any]) -> dict[str, Any]:
    for name in ("name", "dose", "frequency"):
        if name in fields:
            fields[name] = _clean_text(fields[name] or "")
    return fields


def _entry_add(
    entry: _Entry, *, actor: User | None, action: str, fields: tuple[str, ...], redacted: set[str]
) -> _Entry:
    validate_model(entry, exclude=["organization", "patient", "recorded_by"])
    with transaction.atomic():
        entry.save()
        audit(
            actor=actor,
            action=action,
            obj=entry,
            organization_id=entry.organization_id,
            patient_id=entry.patient_id,
            changes=changes(dict.fromkeys(fields), entry, fields, redacted=redacted),
        )
    return entry


def _entry_update(
    entry: _Entry,
    *,
    actor: User | None,
    action: str,
    fields: tuple[str, ...],
    redacted: set[str],
    values: dict[str, Any],
) -> _Entry:
    unknown = set(values) - set(fields)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
    with transaction.atomic():
        # Locked so two clinicians changing the same entry apply one after the other, each against
        # what the other stored.
        current: _Entry = type(entry).objects.select_for_update().get(pk=entry.pk)
        changed: dict[str, Any] = {
            name: value for name, value in values.items() if getattr(current, name) != value
        }
        if not changed:
            return current
        before = {name: getattr(current, name) for name in changed}
        for name, value in changed.items():
            setattr(current, name, value)
        validate_model(current, exclude=["organization", "patient", "recorded_by"])
        current.save(update_fields=[*changed, "updated_at"])
        audit(
            actor=actor,
            action=action,
            obj=current,
            organization_id=current.organization_id,
            patient_id=current.patient_id,
            fields=sorted(changed),
            changes=changes(before, current, sorted(changed), redacted=redacted),
        )
    return current


# Duplicates: review and merge ----------------------------------------------------------------------


def _check_desk(actor: User | None, organization_id: int) -> None:
    """Reception and administrators look after the master patient index; nobody crosses organizations."""
    if actor is None:
        return  # the system (a command, a migration)
    if not (actor.is_superuser or actor.role in (Role.ADMIN, Role.STAFF)):
        raise PermissionDenied("Only administrators and clinic staff merge or review patient records.")
    if not actor.is_superuser and actor.organization_id != organization_id:
        raise NotFound("No such patient.")


def _refuse_merged(patient: Patient) -> None:
    if patient.status == PatientStatus.MERGED:
        raise Conflict(
            f"{patient.mrn} was merged into another record; work on that one.", code="already_merged"
        )


def _refuse_merged_row(patient: Patient) -> None:
    # As stored, not as the caller's copy says: a merge may have happened since it was read.
    if Patient.objects.filter(pk=patient.pk, status=PatientStatus.MERGED).exists():
        _refuse_merged(Patient(mrn=patient.mrn, status=PatientStatus.MERGED))


def patient_duplicate_reviewed(*, actor: User | None, patient: Patient) -> Patient:
    """Reception looked at a sign-up flagged as a possible duplicate and found a different person."""
    _check_desk(actor, patient.organization_id)
    if not patient.duplicate_review:
        return patient
    with transaction.atomic():
        current = Patient.objects.select_for_update().get(pk=patient.pk)
        current.duplicate_review = False
        current.save(update_fields=["duplicate_review", "updated_at"])
        audit(
            actor=actor,
            action="patient.duplicate_reviewed",
            obj=current,
            organization_id=current.organization_id,
            patient_id=current.pk,
        )
    return current


def problem_add(
    *,
    actor: User | None,
    patient: Patient,
    description: str,
    icd10_code: str = "",
    status: str = ProblemStatus.ACTIVE,
    onset_date: dt.date | None = None,
    resolved_date: dt.date | None = None,
) -> Problem:
    """Put a problem on the patient's list. The ICD-10 code is optional, normalized (upper case, with
    the dot) and checked for shape."""
    writer = check_allergy_writer(actor, patient.organization_id, what="problems")
    values = _clean_problem_fields(
        {
            "description": description,
            "icd10_code": icd10_code,
            "status": status,
            "onset_date": onset_date,
            "resolved_date": resolved_date,
        }
    )
    if values["status"] == ProblemStatus.RESOLVED and values["resolved_date"] is None:
        values["resolved_date"] = timezone.localdate()
    problem = Problem(
        organization_id=patient.organization_id,
        patient=patient,
        recorded_by=writer if writer.pk else None,
        recorded_at=timezone.now(),
        **values,
    )
    return _entry_add(
        problem, actor=actor, action="problem.added", fields=PROBLEM_FIELDS, redacted=PROBLEM_REDACTED
    )


def problem_update(*, actor: User | None, problem: Problem, **fields: Any) -> Problem:
    """Change a problem's details or status. Reopening a resolved problem (status active) clears its
    resolution date."""
    check_allergy_writer(actor, problem.organization_id, what="problems")
    fields = _clean_problem_fields(fields)
    if fields.get("status") == ProblemStatus.ACTIVE and "resolved_date" not in fields:
        fields["resolved_date"] = None
    if (
        fields.get("status") == ProblemStatus.RESOLVED
        and fields.get("resolved_date", problem.resolved_date) is None
    ):
        fields["resolved_date"] = timezone.localdate()
    return _entry_update(
        problem,
        actor=actor,
        action="problem.updated",
        fields=PROBLEM_FIELDS,
        redacted=PROBLEM_REDACTED,
        values=fields,
    )


def problem_resolve(*, actor: User | None, problem: Problem, resolved_date: dt.date | None = None) -> Problem:
    """Mark a problem resolved, on `resolved_date` (today if not given). Resolving a resolved problem
    again only moves its date when one is given."""
    check_allergy_writer(actor, problem.organization_id, what="problems")
    if problem.status == ProblemStatus.ENTERED_IN_ERROR:
        raise Conflict("This problem was entered in error; it cannot be resolved.", code="entered_in_error")
    values: dict[str, Any] = {"status": ProblemStatus.RESOLVED}
    if resolved_date is not None or problem.resolved_date is None:
        values["resolved_date"] = resolved_date or timezone.localdate()
    return _entry_update(
        problem,
        actor=actor,
        action="problem.resolved",
        fields=PROBLEM_FIELDS,
        redacted=PROBLEM_REDACTED,
        values=values,
    )


def medication_add(
    *,
    actor: User | None,
    patient: Patient,
    name: str,
    dose: str = "",
    frequency: str = "",
    status: str = MedicationStatus.ACTIVE,
    started_on: dt.date | None = None,
    stopped_on: dt.date | None = None,
) -> Medication:
    """Put a medicine on the patient's current-medication list."""
    writer = check_allergy_writer(actor, patient.organization_id, what="medications")
    values = _clean_medication_fields(
        {
            "name": name,
            "dose": dose,
            "frequency": frequency,
            "status": status,
            "started_on": started_on,
            "stopped_on": stopped_on,
        }
    )
    if values["status"] == MedicationStatus.STOPPED and values["stopped_on"] is None:
        values["stopped_on"] = timezone.localdate()
    medication = Medication(
        organization_id=patient.organization_id,
        patient=patient,
        recorded_by=writer if writer.pk else None,
        recorded_at=timezone.now(),
        **values,
    )
    return _entry_add(
        medication, actor=actor, action="medication.added", fields=MEDICATION_FIELDS, redacted=set()
    )


def medication_update(*, actor: User | None, medication: Medication, **fields: Any) -> Medication:
    """Change a medication's details or status. Restarting a stopped one (status active) clears its stop
    date."""
    check_allergy_writer(actor, medication.organization_id, what="medications")
    fields = _clean_medication_fields(fields)
    if fields.get("status") == MedicationStatus.ACTIVE and "stopped_on" not in fields:
        fields["stopped_on"] = None
    if (
        fields.get("status") == MedicationStatus.STOPPED
        and fields.get("stopped_on", medication.stopped_on) is None
    ):
        fields["stopped_on"] = timezone.localdate()
    return _entry_update(
        medication,
        actor=actor,
        action="medication.updated",
        fields=MEDICATION_FIELDS,
        redacted=set(),
        values=fields,
    )


def medication_stop(
    *, actor: User | None, medication: Medication, stopped_on: dt.date | None = None
) -> Medication:
    """Stop a medication on `stopped_on` (today if not given)."""
    check_allergy_writer(actor, medication.organization_id, what="medications")
    if medication.status == MedicationStatus.ENTERED_IN_ERROR:
        raise Conflict("This medication was entered in error; it cannot be stopped.", code="entered_in_error")
    values: dict[str, Any] = {"status": MedicationStatus.STOPPED}
    if stopped_on is not None or medication.stopped_on is None:
        values["stopped_on"] = stopped_on or timezone.localdate()
    return _entry_update(
        medication,
        actor=actor,
        action="medication.stopped",
        fields=MEDICATION_FIELDS,
        redacted=set(),
        values=values,
    )


MergeMover = Callable[[Patient, Patient], int]
# Relations to Patient that cannot simply be re-pointed (one-to-one, or unique with the patient): the app
# that owns the model registers how to merge them (from its AppConfig.ready(), as apps above patients
# cannot be imported here), returning how many rows it moved.
_merge_movers: dict[str, MergeMover] = {}


def merge_mover_register(label: str, mover: MergeMover) -> None:
    """`label` is "<app_label>.<ModelName>.<field>", e.g. "notifications.ContactPreference.patient"."""
    _merge_movers[label] = mover


def _relations() -> list[Any]:
    # Every reverse relation to Patient. Not Patient._meta.related_objects alone: it leaves out foreign
    # keys declared with related_name="+", and a merge that missed one would leave rows behind.
    return [
        f
        for f in Patient._meta.get_fields(include_hidden=True)
        if isinstance(f, ForeignObjectRel)
        and not (f.related_model is Patient and f.field.name == "merged_into")  # the chain of merges
    ]


def _relation_label(relation: Any) -> str:
    return f"{relation.related_model._meta.label}.{relation.field.name}"


def _needs_mover(relation: Any) -> bool:
    if relation.one_to_one or relation.many_to_many:
        return True
    meta = relation.related_model._meta
    name = relation.field.name
    unique_sets = [set(c.fields) for c in meta.constraints if isinstance(c, models.UniqueConstraint)]
    unique_sets += [set(fields) for fields in meta.unique_together]
    return any(name in fields for fields in unique_sets)


def merge_plan(patient: Patient) -> dict[str, int]:
    """What a merge would move from `patient`: rows per relation to Patient (every foreign key to it
    that any app declares). Raises ImproperlyConfigured for a relation that cannot simply be re-pointed
    and that no app registered a mover for: a merge must never half-move a record."""
    plan: dict[str, int] = {}
    for relation in _relations():
        label = _relation_label(relation)
        if _needs_mover(relation) and label not in _merge_movers:
            raise ImproperlyConfigured(
                f"{label} points at a patient one-to-one or uniquely and no merge mover is registered for "
                "it (patients.services.merge_mover_register): patient_merge refuses until there is one."
            )
        plan[label] = relation.related_model._base_manager.filter(**{relation.field.name: patient}).count()
    return plan


def patient_merge(*, actor: User | None, keep: Patient, merge: Patient) -> dict[str, int]:
    """Merge the duplicate `merge` into `keep`: every row of any app that points at `merge` is moved to
    `keep` (every reverse relation to Patient, so relations added later move too, or the merge refuses while
    one cannot be moved), the portal sign-in moves when only `merge` has one, and `merge` stays, marked
    merged and pointing at `keep`. Returns the rows moved per relation, which the audit trail keeps.

    Refused: another organization's patient (404), one record twice (400), either already merged (409
    `already_merged`), both with a portal sign-in (409 `both_have_accounts`: one person would keep two
    log-ins; an administrator deactivates the spare account first, then merges the other way round).
    The access log stays as written (append-only): its rows name the merged record's id, which the
    record that stays lists as merged into it.

    Locks: both patient rows, lower id first, so two merges of one pair (either way round) take turns
    and the second sees the first's result; booking refuses a merged patient (not active)."""
    _check_desk(actor, keep.organization_id)
    if merge.organization_id != keep.organization_id:
        raise NotFound("No such patient.", fields={"merge": "No such patient."})
    if merge.pk == keep.pk:
        raise ValidationFailed(
            "A record cannot be merged into itself.", fields={"merge": "Choose the duplicate record."}
        )
    with transaction.atomic():
        locked = {
            p.pk: p
            for p in Patient.objects.select_for_update().filter(pk__in=[keep.pk, merge.pk]).order_by("pk")
        }
        keep, merge = locked[keep.pk], locked[merge.pk]
        _refuse_merged(keep)
        _refuse_merged(merge)
        if keep.user_id and merge.user_id:
            raise Conflict(
                f"Both {keep.mrn} and {merge.mrn} have a portal sign-in; one person would keep two. Deactivate "
                "the account the patient no longer uses, then merge that record into the other.",
                code="both_have_accounts",
            )
        moved: dict[str, int] = {}
        for relation in _relations():
            label = _relation_label(relation)
            mover = _merge_movers.get(label)
            if mover is not None:
                moved[label] = mover(merge, keep)
            elif _needs_mover(relation):
                merge_plan(merge)  # raises, naming the relation
            else:
                moved[label] = relation.related_model._base_manager.filter(
                    **{relation.field.name: merge}
                ).update(**{relation.field.name: keep})
        # Live break-the-glass grants follow the record they opened (opd.core keeps a plain id).
        moved["core.AccessGrant.patient_id"] = AccessGrant.objects.filter(patient_id=merge.pk).update(
            patient_id=keep.pk
        )
        account = merge.user_id
        now = timezone.now()
        merge.status, merge.merged_into, merge.merged_at = PatientStatus.MERGED, keep, now
        merge.duplicate_review, merge.user = False, None
        merge.save(
            update_fields=["status", "merged_into", "merged_at", "duplicate_review", "user", "updated_at"]
        )
        fields = ["duplicate_review", "updated_at"]
        keep.duplicate_review = False
        if account:
            keep.user_id = account
            fields.append("user")
        keep.save(update_fields=fields)
        data = {"moved": moved, "merged": merge.pk, "merged_mrn": merge.mrn, "kept_mrn": keep.mrn}
        if account:
            data["account_moved"] = account
        audit(
            actor=actor,
            action="patient.merged",
            obj=keep,
            organization_id=keep.organization_id,
            patient_id=keep.pk,
            **data,
        )
        audit(
            actor=actor,
            action="patient.merged_into",
            obj=merge,
            organization_id=merge.organization_id,
            patient_id=merge.pk,
            kept=keep.pk,
            kept_mrn=keep.mrn,
        )
    return moved
