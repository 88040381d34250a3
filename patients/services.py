from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from opd.core.audit import audit, changes
from opd.core.db import next_in_sequence, retry_on_deadlock
from opd.core.errors import ValidationFailed
from opd.core.models import Clinic, Organization, User
from opd.core.services import validate_model

from .models import MrnSequence, Patient, PatientStatus

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


@retry_on_deadlock  # the very first registrations of an organization race to create its sequence row
def patient_create(
    *,
    actor: User | None,
    organization: Organization,
    registered_at_clinic: Clinic | None = None,
    user: User | None = None,
    **fields: Any,
) -> Patient:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    if registered_at_clinic is not None and registered_at_clinic.organization_id != organization.pk:
        raise ValidationFailed(
            "The clinic belongs to another organization.", fields={"registered_at_clinic": "Unknown clinic."}
        )
    patient = Patient(
        organization=organization, registered_at_clinic=registered_at_clinic, user=user, **fields
    )
    validate_model(patient, exclude=["mrn"])
    with transaction.atomic():
        patient.mrn = _next_mrn(organization.pk)
        patient.save()
        audit(actor=actor, action="patient.registered", obj=patient, organization_id=organization.pk)
    return patient


def patient_update(*, actor: User | None, patient: Patient, **fields: Any) -> Patient:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
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
    """Deactivate or reactivate; a patient is never deleted."""
    if status not in PatientStatus.values:
        raise ValidationFailed(
            "Unknown status.", fields={"status": f"Choose one of {', '.join(PatientStatus.values)}."}
        )
    if patient.status == status:
        return patient
    with transaction.atomic():
        patient.status = status
        patient.save(update_fields=["status", "updated_at"])
        audit(actor=actor, action=f"patient.{status}", obj=patient, organization_id=patient.organization_id)
    return patient
