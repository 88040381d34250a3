"""What every clinical-record service shares: who may write, the locks, the draft rule."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from opd.core import events
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent, Role, User
from opd.core.tenancy import check_clinical_standing
from scheduling.models import Appointment

from ..models import Consultation, ConsultationStatus

# Foreign keys the service sets itself: full_clean need not look each one up again.
SET_BY_SERVICE = ("organization", "clinic", "appointment", "doctor", "patient", "consultation", "author")


def check_doctor(actor: User) -> None:
    if actor is None or not (actor.is_superuser or actor.role == Role.DOCTOR):
        raise PermissionDenied("Only doctors write consultations, prescriptions and results.")
    check_clinical_standing(actor)  # every door: the API, the panel, the admin


def check_same_organization(actor: User, organization_id: int, noun: str) -> None:
    # The doors look rows up in the actor's scope; this is the second line.
    if not actor.is_superuser and actor.organization_id != organization_id:
        raise NotFound(f"No such {noun}.")


def check_owner(actor: User, consultation: Consultation) -> None:
    check_doctor(actor)
    check_same_organization(actor, consultation.organization_id, "consultation")
    if actor.is_superuser:
        return
    if consultation.doctor.user_id != actor.pk:
        raise PermissionDenied("This consultation belongs to another doctor's appointment.")


def check_draft(consultation: Consultation) -> None:
    if consultation.status != ConsultationStatus.DRAFT:
        raise Conflict(
            "The consultation is completed and read-only; add an addendum to correct or extend it.",
            code="consultation_completed",
        )


VERSION_CONFLICT = "version_conflict"
# What a change to each part of the record is called in a conflict's message.
PRESCRIPTION_PART = "prescription"


def _label(name: str) -> str:
    field = Consultation._meta.get_field(name)
    return str(getattr(field, "verbose_name", name))


def changes_since(consultation: Consultation, version: int) -> list[str]:
    """What was written to the record after `version`, by name (its fields' labels, "prescription"), read
    from the audit trail: each write to a draft records the version it made (bump_version's callers)."""
    rows = (
        AuditEvent.objects.filter(
            Q(object_type="consultations.consultation", object_id=str(consultation.pk))
            | Q(object_type="consultations.prescription", data__consultation=consultation.pk),
            organization_id=consultation.organization_id,
            created_at__gte=consultation.created_at,
            data__version__gt=version,
        )
        .order_by("id")
        .values_list("object_type", "data")
    )
    names: list[str] = []
    for object_type, data in rows:
        if object_type == "consultations.prescription":
            found = [PRESCRIPTION_PART]
        else:
            found = [_label(name) for name in data.get("fields", [])]
        names += [name for name in found if name not in names]
    return names


def check_version(consultation: Consultation, expected: int | None) -> None:
    """Refuse a write made from a stale copy of the record (another tab or person saved since): 409,
    nothing written. `expected` None: an older client that sends no version; its write goes through."""
    if expected is None or expected == consultation.version:
        return
    changed = changes_since(consultation, expected)
    what = ", ".join(changed) if changed else "the record"
    raise Conflict(
        f"This consultation was changed in another tab or by someone else after you loaded it (changed: "
        f"{what}; you had version {expected}, it is now version {consultation.version}). Nothing was "
        "saved: load the latest version, then make your change again.",
        fields={"version": f"The current version is {consultation.version}; you sent {expected}."},
        code=VERSION_CONFLICT,
    )


def bump_version(consultation: Consultation) -> int:
    """The next version, set on the locked row (the caller saves "version" with its own write) and sent
    to the doctor's open pages once the write has committed (consultations.realtime)."""
    consultation.version += 1
    events.publish(
        events.CONSULTATION_CHANGED,
        consultation_id=consultation.pk,
        appointment_id=consultation.appointment_id,
        doctor_id=consultation.doctor_id,
        version=consultation.version,
        status=consultation.status,
    )
    return consultation.version


def lock(consultation: Consultation) -> tuple[Appointment, Consultation]:
    """The appointment row, then the consultation row, fresh from the database. Inside a transaction."""
    appointment = Appointment.objects.select_for_update().get(pk=consultation.appointment_id)
    locked = Consultation.objects.select_for_update().get(pk=consultation.pk)
    return appointment, locked


def check_fields(given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
