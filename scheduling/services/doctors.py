"""A doctor's professional profile: who they are, where they work, the room on the waiting-room display.
Approval (which opens their slots) is doctor_set_approval, beside their availability."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from opd.core.audit import audit, changes
from opd.core.errors import ValidationFailed
from opd.core.models import Department, Organization, Role, User
from opd.core.services import validate_model
from opd.core.services.organizations import check_tenant

from ..models import Doctor

PROFILE_FIELDS = ("specialization", "license_number", "room")


def _check_departments(organization_id: int, departments: Iterable[Department]) -> list[Department]:
    departments = list(departments)
    clinic_orgs = dict(
        Department.objects.filter(pk__in=[d.pk for d in departments]).values_list(
            "pk", "clinic__organization_id"
        )
    )
    if any(clinic_orgs.get(d.pk) != organization_id for d in departments):
        message = "These departments belong to another organization."
        raise ValidationFailed(message, fields={"departments": message})
    return departments


def doctor_create(
    *,
    actor: User | None,
    user: User,
    organization: Organization,
    specialization: str,
    license_number: str,
    room: str = "",
    departments: Iterable[Department] = (),
) -> Doctor:
    """A pending profile for a doctor's account; approval (doctor_set_approval) opens their slots."""
    check_tenant(actor, organization.pk, "organization")
    if user.organization_id != organization.pk:
        message = "This account belongs to another organization."
        raise ValidationFailed(message, fields={"user": message})
    if user.role != Role.DOCTOR:
        message = "Give this account the doctor role first."
        raise ValidationFailed(message, fields={"user": message})
    departments = _check_departments(organization.pk, departments)
    doctor = Doctor(
        user=user,
        organization=organization,
        specialization=specialization,
        license_number=license_number,
        room=room,
    )
    validate_model(doctor)
    with transaction.atomic():
        doctor.save()
        doctor.departments.set(departments)
        audit(
            actor=actor,
            action="doctor.created",
            obj=doctor,
            organization_id=organization.pk,
            departments=sorted(d.pk for d in departments),
        )
    return doctor


def doctor_update(*, actor: User | None, doctor: Doctor, **fields: Any) -> Doctor:
    """Edit the profile (specialization, licence, room, departments). The account and organization
    stay: appointments and slots name the doctor. Availability already planned in a department the
    doctor leaves stays until it is removed (availability_rule_delete)."""
    unknown = set(fields) - {*PROFILE_FIELDS, "departments"}
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
    check_tenant(actor, doctor.organization_id, "doctor")
    current = Doctor.objects.get(pk=doctor.pk)
    changed = sorted(
        name for name in PROFILE_FIELDS if name in fields and getattr(current, name) != fields[name]
    )
    before = {name: getattr(current, name) for name in changed}
    for name in changed:
        setattr(current, name, fields[name])
    departments = None
    if "departments" in fields:
        departments = _check_departments(current.organization_id, fields["departments"])
        held = set(current.departments.values_list("pk", flat=True))
        if {d.pk for d in departments} != held:
            changed.append("departments")
            before["departments"] = sorted(held)
        else:
            departments = None
    if not changed:
        return current
    validate_model(current)
    with transaction.atomic():
        profile = [name for name in changed if name != "departments"]
        if profile:
            current.save(update_fields=[*profile, "updated_at"])
        after = {name: getattr(current, name) for name in changed if name != "departments"}
        if departments is not None:
            current.departments.set(departments)
            after["departments"] = sorted(d.pk for d in departments)
        audit(
            actor=actor,
            action="doctor.changed",
            obj=current,
            organization_id=current.organization_id,
            fields=sorted(changed),
            changes=changes(before, after, sorted(before)),
        )
    return current
