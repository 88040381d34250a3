from __future__ import annotations

from django.db.models import Q, QuerySet

from opd.core.crypto import blind_index_candidates
from opd.core.models import Role, User
from opd.core.tenancy import clinic_ids_for

from .models import (
    Allergy,
    AllergyAssessment,
    AllergyStatus,
    Medication,
    MedicationStatus,
    Patient,
    Problem,
    ProblemStatus,
)
from .services import digits_only


def patients_for(user: User) -> QuerySet[Patient]:
    """Patients a user may see.

    Admins, staff and doctors: their organization's master patient index (reception must find any
    returning patient, a doctor a referred one). Patients: themselves. Nothing crosses organizations.
    """
    qs = Patient.objects.all()
    if user.is_superuser:
        return qs
    if user.role == Role.DOCTOR and not clinic_ids_for(user):
        return qs.none()  # suspended, pending or working at no clinic: no patient data at all
    if user.role in (Role.ADMIN, Role.STAFF, Role.DOCTOR):
        return qs.filter(organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    return qs.filter(user=user, organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row


def record_ids(patient: Patient) -> list[int]:
    """The patient's id and those of every record merged into it (also through earlier merges): what
    rows keyed by a plain patient id, such as the append-only access log, are read by."""
    ids, frontier = [patient.pk], [patient.pk]
    while frontier:
        frontier = list(Patient.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True))
        ids += frontier
    return ids


def patient_search(qs: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    """Case-insensitive search by name prefix (each word), phone number, insurance policy number or MRN,
    all index-backed.

    Prefix matching keeps the (organization, last_name, first_name) indexes usable with millions of rows;
    "ann smi" finds Ann Smith and Annabel Smithers. Phone and policy numbers are encrypted, so they are
    found through their keyed blind indexes (opd.core.crypto): a phone number by its last 7 digits
    however written (the whole number, or its end), a policy number whole, ignoring case and punctuation.
    The start of a phone number alone no longer finds it.
    """
    term = (term or "").strip()
    if not term:
        return qs
    condition = Q(mrn__iexact=term)
    digits = digits_only(term)
    if len(digits) >= 4 and not any(ch.isalpha() for ch in term):
        condition |= Q(phone_index__in=blind_index_candidates("phone", digits))
    policy = blind_index_candidates("identifier", term)
    if policy and len(term) >= 4:
        condition |= Q(insurance_index__in=policy)
    words = term.split()
    name_condition = Q()
    for word in words[:4]:
        name_condition &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
    return qs.filter(condition | name_condition)


# Clinical roles that read allergies: safety data every clinician needs before treating or prescribing.
ALLERGY_READERS = (Role.DOCTOR, Role.STAFF, Role.PATIENT)


def allergies_for(user: User) -> QuerySet[Allergy]:
    """Allergies a user may read: those of the patients they may see (patients_for), for doctors in
    clinical standing, staff and the patient themselves. Administrators run the organization and do
    not read clinical data: nothing."""
    qs = Allergy.objects.select_related("recorded_by")
    if user.is_superuser:
        return qs
    if user.role not in ALLERGY_READERS:
        return qs.none()
    return qs.filter(patient__in=patients_for(user).values("pk"))


def active_allergies(patient: Patient) -> list[Allergy]:
    return list(
        Allergy.objects.filter(patient=patient, status=AllergyStatus.ACTIVE).order_by("substance", "id")
    )


def allergy_assessment(patient: Patient, active: list[Allergy]) -> AllergyAssessment:
    """Active allergies on the record; else "no known allergies" if someone recorded it; else not recorded
    (never asked, or only inactive entries left: ask again)."""
    if active:
        return AllergyAssessment.HAS_ALLERGIES
    if patient.no_known_allergies_at is not None:
        return AllergyAssessment.NO_KNOWN_ALLERGIES
    return AllergyAssessment.NOT_RECORDED


def problems_for(user: User) -> QuerySet[Problem]:
    """Problems a user may read: the same readers as allergies (allergies_for)."""
    qs = Problem.objects.select_related("recorded_by")
    if user.is_superuser:
        return qs
    if user.role not in ALLERGY_READERS:
        return qs.none()
    return qs.filter(patient__in=patients_for(user).values("pk"))


def medications_for(user: User) -> QuerySet[Medication]:
    """Current and past medications a user may read: the same readers as allergies (allergies_for)."""
    qs = Medication.objects.select_related("recorded_by")
    if user.is_superuser:
        return qs
    if user.role not in ALLERGY_READERS:
        return qs.none()
    return qs.filter(patient__in=patients_for(user).values("pk"))


def active_problems(patient: Patient) -> list[Problem]:
    # Sorted in Python: the description is encrypted, so the database cannot order by it.
    rows = list(Problem.objects.filter(patient=patient, status=ProblemStatus.ACTIVE))
    return sorted(rows, key=lambda row: (row.description.lower(), row.pk))


def active_medications(patient: Patient) -> list[Medication]:
    return list(
        Medication.objects.filter(patient=patient, status=MedicationStatus.ACTIVE).order_by("name", "id")
    )


def problem_list_order(row: Problem) -> tuple[int, str, int]:
    """Active first, then resolved, then entered in error; by description within each."""
    rank = {ProblemStatus.ACTIVE: 0, ProblemStatus.RESOLVED: 1}.get(ProblemStatus(row.status), 2)
    return (rank, row.description.lower(), row.pk)


def medication_list_order(row: Medication) -> tuple[int, str, int]:
    rank = {MedicationStatus.ACTIVE: 0, MedicationStatus.STOPPED: 1}.get(MedicationStatus(row.status), 2)
    return (rank, row.name.lower(), row.pk)
