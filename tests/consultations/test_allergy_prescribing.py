"""Prescribing against the patient's allergies: refused (409 allergy_conflict) unless overridden with a
reason, which is audited. Matches by name and by the bundled classes (patients.allergy_classes)."""

from __future__ import annotations

import pytest

from consultations.models import Prescription
from opd.core.models import AuditEvent
from patients.allergy_classes import allergy_matches, classes_of
from patients.models import AllergyStatus
from patients.services import allergy_record, allergy_update
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

PRESCRIPTIONS = "/api/v1/prescriptions/"
REASON = "No alternative; tolerated before under observation."


def line(medication: str) -> dict:
    return {
        "medication": medication,
        "strength": "500 mg",
        "dose": "1 tablet",
        "route": "oral",
        "frequency": "three times a day",
        "duration": "5 days",
        "quantity": 15,
        "instructions": "",
    }


def allergic_to(doctor, patient, substance: str, **fields):
    return allergy_record(
        actor=doctor.user, patient=patient, substance=substance, category="drug", severity="severe", **fields
    )


class _A:
    def __init__(self, substance: str):
        self.pk, self.substance = None, substance


@pytest.mark.parametrize(
    ("allergy", "medication", "drug_class"),
    [
        ("Penicillin", "Penicillin V", None),
        ("amoxicillin", "AMOXICILLIN 500 mg capsules", None),
        ("Penicillin", "Flucloxacillin", "penicillins"),
        ("Amoxicillin", "Co-amoxiclav 625 mg", "penicillins"),
        ("Cefalexin", "Ceftriaxone", "cephalosporins"),
        ("Ibuprofen", "Naproxen", "NSAIDs"),
        ("NSAIDs", "Diclofenac gel", "NSAIDs"),
        ("Sulfonamides", "Co-trimoxazole", "sulfonamides"),
        ("Codeine", "Tramadol", "opioids"),
    ],
)
def test_it_matches_by_name_and_by_class(allergy, medication, drug_class):
    [match] = allergy_matches(medication, [_A(allergy)])
    assert match.drug_class == drug_class


@pytest.mark.parametrize(
    ("allergy", "medication"), [("Penicillin", "Paracetamol"), ("Ibuprofen", "Morphine")]
)
def test_it_does_not_match_other_medicines(allergy, medication):
    assert allergy_matches(medication, [_A(allergy)]) == []


def test_a_cephalosporin_is_not_a_penicillin_in_this_list():
    assert classes_of("cefuroxime") == {"cephalosporins"}


def test_it_refuses_a_medicine_matching_an_allergy_naming_it(api_as, doctor, patient, consultation):
    allergic_to(doctor, patient, "Penicillin")

    response = api_as(doctor.user).post(
        PRESCRIPTIONS, {"consultation": consultation.pk, "items": [line("Amoxicillin")]}, format="json"
    )

    error = assert_error(response, 409, "allergy_conflict", fields=["allergy_override_reason"])
    assert "Amoxicillin" in error["message"]
    assert "Penicillin (penicillins)" in error["message"]
    assert not Prescription.objects.exists()


def test_a_short_reason_is_not_an_override(api_as, doctor, patient, consultation):
    allergic_to(doctor, patient, "Ibuprofen")

    response = api_as(doctor.user).post(
        PRESCRIPTIONS,
        {"consultation": consultation.pk, "items": [line("Ibuprofen")], "allergy_override_reason": "ok"},
        format="json",
    )

    assert_error(response, 409, "allergy_conflict")
    assert not Prescription.objects.exists()


def test_the_override_with_a_reason_prescribes_and_is_audited(api_as, doctor, patient, consultation):
    allergy = allergic_to(doctor, patient, "Ibuprofen")

    response = api_as(doctor.user).post(
        PRESCRIPTIONS,
        {"consultation": consultation.pk, "items": [line("Naproxen")], "allergy_override_reason": REASON},
        format="json",
    )

    assert response.status_code == 201, response.content
    event = AuditEvent.objects.get(action="prescription.allergy_override")
    assert event.actor == doctor.user
    assert event.patient_id == patient.pk
    assert event.data["reason"] == REASON
    assert event.data["overridden"] == [
        {
            "medication": "Naproxen",
            "allergies": [{"id": allergy.pk, "substance": "Ibuprofen", "class": "NSAIDs"}],
        }
    ]


def test_inactive_allergies_do_not_refuse(api_as, doctor, patient, consultation):
    allergy = allergic_to(doctor, patient, "Codeine")
    allergy_update(actor=doctor.user, allergy=allergy, status=AllergyStatus.ENTERED_IN_ERROR)

    response = api_as(doctor.user).post(
        PRESCRIPTIONS, {"consultation": consultation.pk, "items": [line("Codeine phosphate")]}, format="json"
    )

    assert response.status_code == 201, response.content
    assert not AuditEvent.objects.filter(action="prescription.allergy_override").exists()


def test_an_update_asks_only_about_new_lines(api_as, doctor, patient, consultation):
    allergic_to(doctor, patient, "Codeine")
    client = api_as(doctor.user)
    created = client.post(
        PRESCRIPTIONS,
        {"consultation": consultation.pk, "items": [line("Codeine")], "allergy_override_reason": REASON},
        format="json",
    )
    assert created.status_code == 201, created.content
    url = f"{PRESCRIPTIONS}{created.json()['id']}/"

    kept = client.patch(url, {"items": [line("Codeine"), line("Paracetamol")]}, format="json")
    assert kept.status_code == 200, kept.content

    refused = client.patch(
        url, {"items": [line("Codeine"), line("Paracetamol"), line("Morphine")]}, format="json"
    )
    assert_error(refused, 409, "allergy_conflict")
    assert [i["medication"] for i in client.get(url).json()["items"]] == ["Codeine", "Paracetamol"]
