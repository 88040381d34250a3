"""Which recorded allergies a medicine may set off: by name, or by a small bundled list of drug classes.

A deliberately small, conservative list for a prescribing warning, not a drug database: a medicine
matches an allergy when its name contains the allergy's substance (case-insensitive), or when both name
a member of one class below (an allergy to "amoxicillin" warns on "Flucloxacillin 500 mg"). A class
member that ends in "-" is a prefix (cephalosporins are "cef..."/"ceph...").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

DRUG_CLASSES: dict[str, tuple[str, ...]] = {
    "penicillins": (
        "penicillin",
        "amoxicillin",
        "amoxycillin",
        "ampicillin",
        "flucloxacillin",
        "cloxacillin",
        "dicloxacillin",
        "piperacillin",
        "co-amoxiclav",
        "augmentin",
        "phenoxymethylpenicillin",
        "benzylpenicillin",
        "temocillin",
        "pivmecillinam",
    ),
    "cephalosporins": ("cef-", "ceph-"),
    "NSAIDs": (
        "ibuprofen",
        "naproxen",
        "diclofenac",
        "aspirin",
        "acetylsalicylic",
        "ketoprofen",
        "indometacin",
        "indomethacin",
        "mefenamic",
        "celecoxib",
        "etoricoxib",
        "meloxicam",
        "piroxicam",
        "ketorolac",
        "nsaid",
    ),
    "sulfonamides": (
        "sulfamethoxazole",
        "sulphamethoxazole",
        "co-trimoxazole",
        "cotrimoxazole",
        "trimethoprim-sulfamethoxazole",
        "sulfadiazine",
        "sulfasalazine",
        "sulfonamide",
        "sulphonamide",
    ),
    "opioids": (
        "morphine",
        "codeine",
        "tramadol",
        "oxycodone",
        "hydromorphone",
        "fentanyl",
        "pethidine",
        "methadone",
        "buprenorphine",
        "dihydrocodeine",
        "tapentadol",
        "diamorphine",
        "opioid",
    ),
}

_WORD = re.compile(r"[a-z][a-z-]*")


class _Allergy(Protocol):
    pk: Any
    substance: str


@dataclass(frozen=True)
class AllergyMatch:
    allergy: _Allergy
    drug_class: str | None  # None: the name itself matched

    def describe(self) -> str:
        if self.drug_class is None:
            return self.allergy.substance
        return f"{self.allergy.substance} ({self.drug_class})"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _member(word: str, member: str) -> bool:
    return word.startswith(member[:-1]) if member.endswith("-") else word == member


def classes_of(text: str) -> set[str]:
    """The bundled classes `text` (a medicine name or an allergy's substance) names a member of."""
    words = _words(text)
    found = {name for name, members in DRUG_CLASSES.items() if name.lower() in words}
    for name, members in DRUG_CLASSES.items():
        if any(_member(word, member) for word in words for member in members):
            found.add(name)
    return found


def allergy_matches(medication: str, allergies: Iterable[_Allergy]) -> list[AllergyMatch]:
    """The allergies (pass the active ones) that prescribing `medication` would set off."""
    name = " ".join(medication.lower().split())
    medication_classes = classes_of(name)
    matches = []
    for allergy in allergies:
        substance = " ".join(allergy.substance.lower().split())
        if substance and substance in name:
            matches.append(AllergyMatch(allergy, None))
            continue
        shared = sorted(medication_classes & classes_of(substance))
        if shared:
            matches.append(AllergyMatch(allergy, shared[0]))
    return matches
