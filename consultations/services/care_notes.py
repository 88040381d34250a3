"""Care notes: nurses', staff's and doctors' notes about a patient at one of their clinics."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit, changes
from opd.core.errors import NotFound, PermissionDenied
from opd.core.models import Clinic, Role, User
from opd.core.services import validate_model
from opd.core.tenancy import check_clinical_standing, clinic_ids_for
from patients.models import Patient

from ..models import CareNote
from .common import SET_BY_SERVICE


def care_note_create(*, actor: User, patient: Patient, clinic: Clinic, category: str, text: str) -> CareNote:
    """A nurse's or staff member's (or a doctor's) note about a patient at one of their clinics."""
    if actor is None or not (actor.is_superuser or actor.role in (Role.STAFF, Role.DOCTOR)):
        raise PermissionDenied("Only clinic staff and doctors write care notes.")
    check_clinical_standing(actor)
    ids = clinic_ids_for(actor)
    if ids is not None and clinic.pk not in ids:
        raise NotFound("No such clinic.", fields={"clinic": "Unknown clinic."})
    if patient.organization_id != clinic.organization_id:
        raise NotFound("No such patient.", fields={"patient": "Unknown patient."})
    now = timezone.now()
    note = CareNote(
        organization_id=clinic.organization_id,
        clinic=clinic,
        patient=patient,
        author=actor,
        category=category,
        text=(text or "").strip(),
        created_at=now,
        date=timezone.localtime(now, clinic.tz).date(),
    )
    validate_model(note, exclude=SET_BY_SERVICE)
    with transaction.atomic():
        note.save()
        audit(actor=actor, action="care_note.created", obj=note, organization_id=note.organization_id)
    return note


def care_note_update(
    *, actor: User, care_note: CareNote, category: str | None = None, text: str | None = None
) -> CareNote:
    """Its author corrects a care note; the audit trail keeps what it said before."""
    check_clinical_standing(actor)
    with transaction.atomic():
        current = CareNote.objects.select_for_update().get(pk=care_note.pk)
        if current.author_id != actor.pk:
            raise PermissionDenied("Only the author may change a care note.")
        before = {"category": current.category, "text": current.text}
        if category is not None:
            current.category = category
        if text is not None:
            current.text = text.strip()
        changed = [name for name, old in before.items() if getattr(current, name) != old]
        if not changed:
            return current
        validate_model(current, exclude=SET_BY_SERVICE)
        current.save(update_fields=[*changed, "updated_at"])
        if "category" in changed:
            events.publish(events.CLINICAL_DAY_CHANGED, clinic_id=current.clinic_id, day=current.date)
        audit(
            actor=actor,
            action="care_note.updated",
            obj=current,
            organization_id=current.organization_id,
            fields=changed,
            # The text as its length and a keyed fingerprint: a copy here would undo its encryption.
            changes=changes(before, current, changed),
        )
    return current
