"""Prescriptions: medication lines written on a draft consultation, issued when it is completed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from opd.core.audit import audit
from opd.core.db import retry_on_deadlock
from opd.core.errors import Conflict, ValidationFailed
from opd.core.models import User
from opd.core.services import validate_model
from patients.allergy_classes import AllergyMatch, allergy_matches
from patients.models import Allergy, AllergyStatus

from ..models import Consultation, Prescription, PrescriptionItem
from .common import SET_BY_SERVICE, bump_version, check_draft, check_owner, check_version, lock

ITEM_FIELDS = ("medication", "strength", "dose", "route", "frequency", "duration", "quantity", "instructions")


def _build_items(items: list[dict[str, Any]]) -> list[PrescriptionItem]:
    if not items:
        raise ValidationFailed(
            "A prescription needs at least one medication line.",
            fields={"items": "Add at least one medication line."},
        )
    built, errors = [], {}
    for index, data in enumerate(items):
        unknown = set(data) - set(ITEM_FIELDS)
        if unknown:
            errors.update({f"items.{index}.{name}": ["Unknown field."] for name in sorted(unknown)})
            continue
        item = PrescriptionItem(position=index + 1, **data)
        try:
            validate_model(item, exclude=("prescription", "position"))
        except ValidationFailed as exc:
            errors.update({f"items.{index}.{name}": messages for name, messages in exc.fields.items()})
        built.append(item)
    if errors:
        first, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{first}: {messages[0]}", fields=errors)
    return built


ALLERGY_CONFLICT = "allergy_conflict"
OVERRIDE_FIELD = "allergy_override_reason"


def _check_allergies(
    *,
    actor: User,
    consultation: Consultation,
    items: list[PrescriptionItem],
    override_reason: str,
    already: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Refuse (409 allergy_conflict, naming the allergy) a line whose medicine matches an active allergy
    of the patient, by name or by class (patients.allergy_classes), unless the prescriber gives a reason
    of at least OPD_ALLERGY_OVERRIDE_MIN_LENGTH characters; the override is audited with the reason.
    `already`: medicines already on the prescription (accepted, or overridden, before): not asked again
    when the lines are sent back with one more."""
    allergies = list(Allergy.objects.filter(patient_id=consultation.patient_id, status=AllergyStatus.ACTIVE))
    if not allergies:
        return
    found: list[tuple[str, list[AllergyMatch]]] = []
    for item in items:
        if item.medication.lower() in already:
            continue
        matches = allergy_matches(item.medication, allergies)
        if matches:
            found.append((item.medication, matches))
    if not found:
        return
    described = "; ".join(
        f"{medication} matches the recorded allergy to {', '.join(m.describe() for m in matches)}"
        for medication, matches in found
    )
    reason = " ".join((override_reason or "").split())
    minimum = settings.OPD_ALLERGY_OVERRIDE_MIN_LENGTH
    if len(reason) < minimum:
        raise Conflict(
            f"Allergy: {described}. To prescribe it anyway, give the reason for the override.",
            code=ALLERGY_CONFLICT,
            fields={OVERRIDE_FIELD: f"Required to override the allergy: at least {minimum} characters."},
        )
    audit(
        actor=actor,
        action="prescription.allergy_override",
        obj=consultation,
        organization_id=consultation.organization_id,
        clinic_id=consultation.clinic_id,
        patient_id=consultation.patient_id,
        reason=reason,
        overridden=[
            {
                "medication": medication,
                "allergies": [
                    {"id": m.allergy.pk, "substance": m.allergy.substance, "class": m.drug_class}
                    for m in matches
                ],
            }
            for medication, matches in found
        ],
    )


def _bump(consultation: Consultation) -> int:
    """A prescription is part of the consultation's record: writing it moves the record's version."""
    version = bump_version(consultation)
    consultation.save(update_fields=["version", "updated_at"])
    return version


def _save_items(prescription: Prescription, items: list[PrescriptionItem]) -> None:
    for item in items:
        item.prescription = prescription
    PrescriptionItem.objects.bulk_create(items)


@retry_on_deadlock
def prescription_create(
    *,
    actor: User,
    consultation: Consultation,
    items: list[dict[str, Any]],
    notes: str = "",
    allergy_override_reason: str = "",
    expected_version: int | None = None,
) -> Prescription:
    """Write a prescription (one or more medication lines) on a draft consultation; it is issued when
    the consultation is completed. A line matching an active allergy needs `allergy_override_reason`.
    Bumps the consultation's version; a stale `expected_version` is a 409 (common.check_version)."""
    built = _build_items(items)
    with transaction.atomic():
        _appointment, current = lock(consultation)
        check_owner(actor, current)
        check_draft(current)
        check_version(current, expected_version)
        _check_allergies(
            actor=actor, consultation=current, items=built, override_reason=allergy_override_reason
        )
        prescription = Prescription(
            organization_id=current.organization_id,
            clinic_id=current.clinic_id,
            consultation=current,
            patient_id=current.patient_id,
            doctor_id=current.doctor_id,
            notes=(notes or "").strip(),
        )
        validate_model(prescription, exclude=SET_BY_SERVICE)
        prescription.save()
        _save_items(prescription, built)
        version = _bump(current)
        audit(
            actor=actor,
            action="prescription.created",
            obj=prescription,
            organization_id=prescription.organization_id,
            consultation=current.pk,
            lines=len(built),
            version=version,
        )
    return prescription


@retry_on_deadlock
def prescription_update(
    *,
    actor: User,
    prescription: Prescription,
    items: list[dict[str, Any]] | None = None,
    notes: str | None = None,
    allergy_override_reason: str = "",
    expected_version: int | None = None,
) -> Prescription:
    """Replace a draft prescription's lines and/or notes (only while its consultation is a draft). A new
    line matching an active allergy needs `allergy_override_reason`. Bumps the consultation's version;
    a stale `expected_version` is a 409 (common.check_version)."""
    built = _build_items(items) if items is not None else None
    with transaction.atomic():
        _appointment, consultation = lock(prescription.consultation)
        check_owner(actor, consultation)
        check_draft(consultation)
        check_version(consultation, expected_version)
        current = Prescription.objects.select_for_update().get(pk=prescription.pk)
        if built is not None:
            _check_allergies(
                actor=actor,
                consultation=consultation,
                items=built,
                override_reason=allergy_override_reason,
                already={name.lower() for name in current.items.values_list("medication", flat=True)},
            )
        if notes is not None:
            current.notes = notes.strip()
            validate_model(current, exclude=SET_BY_SERVICE)
            current.save(update_fields=["notes", "updated_at"])
        if built is not None:
            current.items.all().delete()
            _save_items(current, built)
            current.save(update_fields=["updated_at"])
        version = _bump(consultation)
        audit(
            actor=actor,
            action="prescription.updated",
            obj=current,
            organization_id=current.organization_id,
            consultation=consultation.pk,
            lines=len(built) if built is not None else None,
            version=version,
        )
    return current


@retry_on_deadlock
def prescription_delete(*, actor: User, prescription: Prescription) -> None:
    """Withdraw a prescription that was never issued (its consultation is still a draft)."""
    with transaction.atomic():
        _appointment, consultation = lock(prescription.consultation)
        check_owner(actor, consultation)
        check_draft(consultation)
        version = _bump(consultation)
        audit(
            actor=actor,
            action="prescription.deleted",
            obj=prescription,
            organization_id=prescription.organization_id,
            consultation=consultation.pk,
            version=version,
        )
        PrescriptionItem.objects.filter(prescription_id=prescription.pk).delete()
        Prescription.objects.filter(pk=prescription.pk).delete()
