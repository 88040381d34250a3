"""Reads of the archive. Archived clinical content (consultations, their notes, addenda, prescriptions and
results) follows the live record's rules: clinical roles only (doctors at the clinic, under the care
relationship or a stated reason; superusers), never organization admins, and every read is logged."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import QuerySet

from opd.core import crypto
from opd.core.fields import encrypted_fields
from opd.core.models import Role, User
from opd.core.tenancy import clinic_ids_for, has_clinical_standing

from .models import ArchivedRecord

# Rows whose content is clinical: what admins may not read live either (consultations.selectors).
CLINICAL_MODELS = frozenset(
    {
        "consultations.consultation",
        "consultations.addendum",
        "consultations.prescription",
        "consultations.prescriptionitem",
        "consultations.result",
    }
)
APPOINTMENT = "scheduling.appointment"


def is_clinical(record: ArchivedRecord) -> bool:
    return record.model in CLINICAL_MODELS


def may_read_archived_clinical_content(user: User) -> bool:
    if not (user and user.is_authenticated):
        return False
    return user.is_superuser or (user.role == Role.DOCTOR and has_clinical_standing(user))


def archived_root_of(record: ArchivedRecord) -> ArchivedRecord | None:
    """The group's root row (an appointment), which names the patient and the clinic."""
    if record.model == record.root_model and record.object_pk == record.root_pk:
        return record
    return ArchivedRecord.objects.filter(
        model=record.root_model,
        object_pk=record.root_pk,
        organization_id=record.organization_id,  # type: ignore[misc]  # no organization: matches no row
    ).first()


def archived_patient_roots(user: User, patient_id: int) -> QuerySet[ArchivedRecord]:
    """Archived appointments of the patient in the user's organization, at the clinics the user works."""
    qs = ArchivedRecord.objects.filter(model=APPOINTMENT, data__fields__patient=patient_id)
    if user.is_superuser:
        return qs
    qs = qs.filter(organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    ids = clinic_ids_for(user)
    return qs if ids is None else qs.filter(data__fields__clinic__in=ids)


def archived_clinical_rows(user: User, patient_id: int) -> QuerySet[ArchivedRecord]:
    """The archived clinical rows of the patient's archived appointments the user may see."""
    if not may_read_archived_clinical_content(user):
        return ArchivedRecord.objects.none()
    roots = list(archived_patient_roots(user, patient_id).values_list("object_pk", flat=True))
    return ArchivedRecord.objects.filter(
        root_model=APPOINTMENT, root_pk__in=roots, model__in=CLINICAL_MODELS
    ).order_by("-archived_at", "root_pk", "position")


def unsealed_data(record_data: dict[str, Any]) -> dict[str, Any]:
    """The archived row with its encrypted fields decrypted: for the deserializer (which saves them sealed
    again) and for a clinician reading the archive. The stored copy stays sealed."""
    model = apps.get_model(record_data["model"])
    fields = dict(record_data["fields"])
    for f in encrypted_fields(model):
        if fields.get(f.name):
            fields[f.name] = crypto.decrypt(fields[f.name], f.encryption_context())  # type: ignore[attr-defined]
    return {**record_data, "fields": fields}
