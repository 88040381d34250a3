"""Possible duplicates at registration (#17): who already in the organization might be this person.

A candidate has the same date of birth and a similar name, or the same phone number. Names are compared
after folding case, accents, punctuation and spacing ("José  O'Brien" is "jose o brien"), as sets of
words (so first and last name swapped still match), then by edit distance (one typo in a short name,
two in a long one) and by a shortened first name under the same surname ("Chris" for "Christopher").
The phone goes through its blind index (the last 7 digits), as search does. Both lookups are
index-backed: (organization, date_of_birth) and (organization, phone_index). Merged records are not
candidates (the record they went into is).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from django.db.models import Q

from opd.core.crypto import blind_index_candidates

from .models import Patient, PatientStatus

MAX_CANDIDATES = 10
# Patients born on one day in one organization: a few hundred at the very most; past this the name
# check would read too much, and the first ones are enough to warn about.
MAX_SAME_BIRTH_DATE = 500
SHORT_FIRST_NAME = 3


@dataclass(frozen=True)
class Candidate:
    patient: Patient
    reasons: tuple[str, ...]  # "name_and_date_of_birth", "phone"


def fold_name(value: str) -> str:
    """Lower case, no accents, letters and digits only, single spaces."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in plain).split())


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 as soon as it is known to exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def names_similar(first_a: str, last_a: str, first_b: str, last_b: str) -> bool:
    fa, la, fb, lb = fold_name(first_a), fold_name(last_a), fold_name(first_b), fold_name(last_b)
    words_a, words_b = sorted(f"{fa} {la}".split()), sorted(f"{fb} {lb}".split())
    if not words_a or not words_b:
        return False
    if words_a == words_b:
        return True
    whole_a, whole_b = "".join(words_a), "".join(words_b)
    limit = 2 if min(len(whole_a), len(whole_b)) >= 10 else 1
    if edit_distance(whole_a, whole_b, limit) <= limit:
        return True
    same_surname = la.replace(" ", "") == lb.replace(" ", "")
    short, long = sorted((fa, fb), key=len)
    return same_surname and len(short) >= SHORT_FIRST_NAME and long.startswith(short)


def possible_duplicates(
    *,
    organization_id: int,
    first_name: str,
    last_name: str,
    date_of_birth: dt.date | None,
    phone: str = "",
    exclude_pk: int | None = None,
) -> list[Candidate]:
    """Patients of the organization who may be this person, most likely first (both reasons, then
    name and date of birth, then phone), at most MAX_CANDIDATES."""
    base = (
        Patient.objects.filter(organization_id=organization_id)
        .exclude(status=PatientStatus.MERGED)
        .select_related("registered_at_clinic")
        .defer("email", "address", "emergency_contact_phone", "insurance_policy_number")
    )
    if exclude_pk is not None:
        base = base.exclude(pk=exclude_pk)
    reasons: dict[int, list[str]] = {}
    found: dict[int, Patient] = {}
    if date_of_birth is not None:
        for patient in base.filter(date_of_birth=date_of_birth).order_by("pk")[:MAX_SAME_BIRTH_DATE]:
            if names_similar(first_name, last_name, patient.first_name, patient.last_name):
                found[patient.pk] = patient
                reasons.setdefault(patient.pk, []).append("name_and_date_of_birth")
    phone_indexes = blind_index_candidates("phone", phone or "")
    if phone_indexes:
        for patient in base.filter(Q(phone_index__in=phone_indexes)).order_by("pk")[:MAX_CANDIDATES]:
            found[patient.pk] = patient
            reasons.setdefault(patient.pk, []).append("phone")
    ranked = sorted(found, key=lambda pk: (-len(reasons[pk]), reasons[pk][0] != "name_and_date_of_birth", pk))
    return [Candidate(found[pk], tuple(reasons[pk])) for pk in ranked[:MAX_CANDIDATES]]
