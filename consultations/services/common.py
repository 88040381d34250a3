"""What every clinical-record service shares: who may write, the locks, the draft rule."""

from __future__ import annotations

from typing import Any

from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import Role, User
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


def lock(consultation: Consultation) -> tuple[Appointment, Consultation]:
    """The appointment row, then the consultation row, fresh from the database. Inside a transaction."""
    appointment = Appointment.objects.select_for_update().get(pk=consultation.appointment_id)
    locked = Consultation.objects.select_for_update().get(pk=consultation.pk)
    return appointment, locked


def check_fields(given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
