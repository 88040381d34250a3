"""Reads of the clinical record, scoped to the requesting user. Doors never query these models unscoped.

Who sees what (nothing crosses organizations; another tenant's id is a 404):

    row                                   doctor                 patient                  staff, admin
    consultation, prescription, result    at their clinics       own, completed only      no (403)
    care note                             at their clinics       no (403)                 at their clinics
    patient history                       what the above allow   own, as above            no (403)

"Doctors of the patient's clinics" is read as: a record is visible to the doctors of the clinic where
it was made. Doctors see their colleagues' drafts there (read-only); only the appointment's doctor
writes. Admins are treated like staff for clinical notes: running a clinic does not need them, and
the admin role is held by people who are not clinicians. Superusers see everything.

These are the clinic-wide scopes. On top of them, a doctor needs a care relationship with the patient (or
a stated reason) to open a record, and lists keep to the patients in their care: consultations.access.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, F, Prefetch, QuerySet, Value

from opd.core.models import Role, User
from opd.core.tenancy import has_clinical_standing, restrict_to_clinics
from patients.models import Patient
from scheduling.models import Appointment
from scheduling.selectors import appointments_for

from .models import Addendum, CareNote, Consultation, ConsultationStatus, Prescription, Result


def may_read_clinical_records(user: User) -> bool:
    """Doctors in clinical standing (opd.core.tenancy) and patients; the doors answer a doctor without
    standing with 403 no_clinical_standing (check_clinical_standing) rather than an empty list."""
    if not (user and user.is_authenticated):
        return False
    if user.role == Role.DOCTOR and not user.is_superuser:
        return has_clinical_standing(user)
    return user.is_superuser or user.role == Role.PATIENT


def may_read_care_notes(user: User) -> bool:
    if not (user and user.is_authenticated):
        return False
    if user.role == Role.DOCTOR and not user.is_superuser:
        return has_clinical_standing(user)
    return user.is_superuser or user.role in (Role.ADMIN, Role.STAFF)


def _clinical(qs: QuerySet[Any], user: User, *, completed: str) -> QuerySet[Any]:
    if user.is_superuser:
        return qs
    if user.role == Role.DOCTOR:
        if not has_clinical_standing(user):
            return qs.none()
        return restrict_to_clinics(qs.filter(organization_id=user.organization_id), user)
    if user.role == Role.PATIENT:
        return qs.filter(
            patient__user=user,
            organization_id=user.organization_id,
            **{completed: ConsultationStatus.COMPLETED},
        )
    return qs.none()


def consultations_for(user: User) -> QuerySet[Consultation]:
    return _clinical(Consultation.objects.all(), user, completed="status")


def prescriptions_for(user: User) -> QuerySet[Prescription]:
    return _clinical(Prescription.objects.all(), user, completed="consultation__status")


def results_for(user: User) -> QuerySet[Result]:
    return _clinical(Result.objects.all(), user, completed="consultation__status")


def care_notes_for(user: User) -> QuerySet[CareNote]:
    qs = CareNote.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.DOCTOR and not has_clinical_standing(user):
        return qs.none()
    if user.role in (Role.ADMIN, Role.STAFF, Role.DOCTOR):
        return restrict_to_clinics(qs.filter(organization_id=user.organization_id), user)  # type: ignore[misc]  # no organization: matches no row
    return qs.none()


# What the representations read, in a fixed number of queries whatever the number of rows.
def consultation_details(qs: QuerySet[Consultation]) -> QuerySet[Consultation]:
    return qs.select_related("patient", "doctor__user", "clinic").prefetch_related(
        Prefetch("addenda", queryset=Addendum.objects.select_related("author"))
    )


def prescription_details(qs: QuerySet[Prescription]) -> QuerySet[Prescription]:
    return qs.select_related("patient", "doctor__user", "clinic").prefetch_related("items")


def result_details(qs: QuerySet[Result]) -> QuerySet[Result]:
    return qs.select_related("patient", "recorded_by", "clinic")


def care_note_details(qs: QuerySet[CareNote]) -> QuerySet[CareNote]:
    return qs.select_related("patient", "author", "clinic")


def appointment_details(qs: QuerySet[Appointment]) -> QuerySet[Appointment]:
    return qs.select_related("patient", "doctor__user", "department", "clinic")


# The patient's history ------------------------------------------------------------------------------

APPOINTMENT, CONSULTATION, PRESCRIPTION, RESULT, CARE_NOTE = (
    "appointment",
    "consultation",
    "prescription",
    "result",
    "care_note",
)
HISTORY_KINDS = (APPOINTMENT, CONSULTATION, PRESCRIPTION, RESULT, CARE_NOTE)


@dataclass(frozen=True)
class HistoryEntry:
    kind: str
    id: int
    at: dt.datetime
    item: Any


def _timeline_rows(qs: QuerySet[Any], kind: str, at: str) -> QuerySet[Any]:
    return (  # type: ignore[no-any-return]
        qs.order_by()
        .annotate(kind=Value(kind, output_field=CharField(max_length=16)), at=F(at))
        .values_list("kind", "pk", "at")
    )


def patient_history(user: User, patient: Patient) -> QuerySet[Any]:
    """(kind, id, at) of everything in the patient's record the user may see, newest first.

    One UNION ALL sorted and sliced in SQL: a page costs one query for its rows (and one to count),
    then one per kind on the page (history_entries), whatever the length of the history."""
    parts = [
        _timeline_rows(appointments_for(user).filter(patient=patient), APPOINTMENT, "start"),
        _timeline_rows(consultations_for(user).filter(patient=patient), CONSULTATION, "started_at"),
        _timeline_rows(prescriptions_for(user).filter(patient=patient), PRESCRIPTION, "created_at"),
        _timeline_rows(results_for(user).filter(patient=patient), RESULT, "created_at"),
    ]
    if may_read_care_notes(user):
        parts.append(_timeline_rows(care_notes_for(user).filter(patient=patient), CARE_NOTE, "created_at"))
    first, *rest = parts
    return first.union(*rest, all=True).order_by("-at", "kind", "-pk")


def history_entries(user: User, rows: list[tuple[str, int, dt.datetime]]) -> list[HistoryEntry]:
    """Load a page of timeline rows: one query per kind present (plus its prefetches), in page order."""
    ids: dict[str, list[int]] = {kind: [] for kind in HISTORY_KINDS}
    for kind, pk, _at in rows:
        ids[kind].append(pk)
    loaders: dict[str, Callable[[list[int]], Iterable[Any]]] = {
        APPOINTMENT: lambda pks: appointment_details(appointments_for(user).filter(pk__in=pks)),
        CONSULTATION: lambda pks: consultation_details(consultations_for(user).filter(pk__in=pks)),
        PRESCRIPTION: lambda pks: prescription_details(prescriptions_for(user).filter(pk__in=pks)),
        RESULT: lambda pks: result_details(results_for(user).filter(pk__in=pks)),
        CARE_NOTE: lambda pks: care_note_details(care_notes_for(user).filter(pk__in=pks)),
    }
    loaded: dict[tuple[str, int], Any] = {}
    for kind, pks in ids.items():
        if pks:
            loaded.update({(kind, obj.pk): obj for obj in loaders[kind](pks)})
    return [
        HistoryEntry(kind=kind, id=pk, at=at, item=loaded[(kind, pk)])
        for kind, pk, at in rows
        if (kind, pk) in loaded
    ]
