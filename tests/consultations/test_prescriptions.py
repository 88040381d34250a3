"""/api/v1/prescriptions/ and the printable prescription page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consultations.models import Prescription, PrescriptionItem
from consultations.services import prescription_create
from opd.core.models import AuditEvent
from tests.conftest import BREAK_GLASS, assert_error
from tests.consultations.factories import complete

from .factories import open_consultation

pytestmark = pytest.mark.django_db

PRESCRIPTIONS = "/api/v1/prescriptions/"
AMOXICILLIN = {
    "medication": "Amoxicillin",
    "strength": "500 mg",
    "dose": "1 capsule",
    "route": "oral",
    "frequency": "three times a day",
    "duration": "7 days",
    "quantity": 21,
    "instructions": "Finish the course.",
}
PARACETAMOL = {
    "medication": "Paracetamol",
    "strength": "500 mg",
    "dose": "2 tablets",
    "route": "oral",
    "frequency": "up to four times a day",
    "duration": "5 days",
    "quantity": 40,
    "instructions": "No more than 8 tablets in 24 hours.",
}


def detail(prescription) -> str:
    return f"{PRESCRIPTIONS}{prescription.pk}/"


def test_the_doctor_writes_a_prescription_with_several_lines(api_as, doctor, consultation):
    response = api_as(doctor.user).post(
        PRESCRIPTIONS,
        {"consultation": consultation.pk, "notes": "Allergies checked.", "items": [AMOXICILLIN, PARACETAMOL]},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert [item["medication"] for item in body["items"]] == ["Amoxicillin", "Paracetamol"]
    assert [item["position"] for item in body["items"]] == [1, 2]
    assert {k: body["items"][0][k] for k in AMOXICILLIN} == AMOXICILLIN
    assert body["issued_at"] is None
    assert body["print_url"] == reverse("consultations:prescription-print", args=[body["id"]])
    assert body["patient"]["id"] == consultation.patient_id


def test_completing_the_consultation_issues_its_prescriptions(api_as, doctor, consultation):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    complete(consultation, actor=doctor.user)

    body = api_as(doctor.user).get(detail(prescription)).json()

    assert body["issued_at"]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([{**AMOXICILLIN, "medication": ""}], "items.0.medication"),
        ([AMOXICILLIN, {**PARACETAMOL, "dose": ""}], "items.1.dose"),
        ([{**AMOXICILLIN, "quantity": 0}], "items.0.quantity"),
        ([{**AMOXICILLIN, "route": "by mouth"}], "items.0.route"),
        ([{**AMOXICILLIN, "colour": "red"}], "items.0.colour"),
        ([{k: v for k, v in AMOXICILLIN.items() if k != "frequency"}], "items.0.frequency"),
    ],
)
def test_it_refuses_bad_lines_naming_them_and_writes_nothing(api_as, doctor, consultation, items, field):
    audits = AuditEvent.objects.count()
    response = api_as(doctor.user).post(PRESCRIPTIONS, {"consultation": consultation.pk, "items": items})

    assert_error(response, 400, "invalid", {field})
    assert not Prescription.objects.exists()
    assert not PrescriptionItem.objects.exists()
    assert AuditEvent.objects.count() == audits


def test_a_draft_prescription_can_be_changed_and_withdrawn(api_as, doctor, consultation):
    client = api_as(doctor.user)
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])

    response = client.patch(detail(prescription), {"items": [PARACETAMOL], "notes": "Switched."})

    assert response.status_code == 200, response.content
    assert [item["medication"] for item in response.json()["items"]] == ["Paracetamol"]
    assert response.json()["notes"] == "Switched."
    assert client.delete(detail(prescription)).status_code == 204
    assert not Prescription.objects.exists()


def test_an_issued_prescription_is_read_only(api_as, doctor, consultation):
    client = api_as(doctor.user)
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    complete(consultation, actor=doctor.user)

    assert_error(client.patch(detail(prescription), {"notes": "x"}), 409, "consultation_completed")
    assert_error(client.delete(detail(prescription)), 409, "consultation_completed")
    response = client.post(PRESCRIPTIONS, {"consultation": consultation.pk, "items": [PARACETAMOL]})
    assert_error(response, 409, "consultation_completed")
    assert Prescription.objects.get().items.count() == 1


def test_only_the_appointments_doctor_prescribes(
    api_as, colleague, other_clinic_doctor, doctor, consultation
):
    assert_error(
        api_as(colleague.user).post(PRESCRIPTIONS, {"consultation": consultation.pk, "items": [AMOXICILLIN]}),
        403,
        "permission_denied",
    )
    assert_error(
        api_as(other_clinic_doctor.user).post(
            PRESCRIPTIONS, {"consultation": consultation.pk, "items": [AMOXICILLIN]}
        ),
        404,
        "not_found",
        {"consultation"},
    )
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    assert_error(api_as(colleague.user).delete(detail(prescription)), 403, "permission_denied")
    assert Prescription.objects.count() == 1


def test_who_reads_prescriptions(
    api_as, doctor, colleague, other_clinic_doctor, staff_user, patient, other_patient, consultation
):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])

    # A colleague at the clinic with no appointment with the patient: with a reason (break the glass).
    assert_error(api_as(colleague.user).get(detail(prescription)), 403, "reason_required")
    assert api_as(colleague.user).get(detail(prescription), {"reason": BREAK_GLASS}).status_code == 200
    assert_error(api_as(other_clinic_doctor.user).get(detail(prescription)), 404, "not_found")
    assert_error(api_as(staff_user).get(PRESCRIPTIONS), 403, "permission_denied")
    assert_error(api_as(staff_user).get(detail(prescription)), 403, "permission_denied")
    # The patient: only once issued.
    assert_error(api_as(patient.user).get(detail(prescription)), 404, "not_found")
    complete(consultation, actor=doctor.user)
    assert api_as(patient.user).get(detail(prescription)).status_code == 200
    assert api_as(patient.user).get(PRESCRIPTIONS).json()["count"] == 1
    assert_error(api_as(other_patient.user).get(detail(prescription)), 404, "not_found")
    assert_error(api_as(patient.user).post(PRESCRIPTIONS, {}), 403, "permission_denied")


# The printable page ----------------------------------------------------------------------------------


def print_url(prescription) -> str:
    return reverse("consultations:prescription-print", args=[prescription.pk])


def test_the_printable_prescription_shows_what_a_pharmacist_needs(client, doctor, consultation, clinic):
    prescription = prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[AMOXICILLIN, PARACETAMOL],
        notes="Allergies checked.",
    )
    complete(consultation, actor=doctor.user)
    prescription.refresh_from_db()
    client.force_login(doctor.user)

    response = client.get(print_url(prescription))

    assert response.status_code == 200
    html = response.content.decode()
    patient = consultation.patient
    for text in (
        clinic.name,
        patient.full_name,
        patient.mrn,
        doctor.display_name,
        doctor.license_number,
        "Amoxicillin",
        "500 mg",
        "three times a day",
        "Paracetamol",
        "No more than 8 tablets in 24 hours.",
        "Allergies checked.",
        "Europe/London",
    ):
        assert text in html, text
    assert "DRAFT" not in html
    assert "prescription-print.css" in html
    assert "https://" not in html  # no CDN
    assert "http://" not in html


def test_a_draft_prescription_prints_marked_as_draft(client, doctor, consultation):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    client.force_login(doctor.user)
    assert "DRAFT" in client.get(print_url(prescription)).content.decode()


def test_who_may_print(
    client, doctor, colleague, other_clinic_doctor, staff_user, patient, other_patient, department
):
    consultation = open_consultation(doctor=doctor, department=department, patient=patient)
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])

    def status(user) -> int:
        client.force_login(user)
        return client.get(print_url(prescription)).status_code

    assert status(doctor.user) == 200
    # A colleague with no appointment with the patient: the page asks why (break the glass) first.
    assert status(colleague.user) == 403
    client.post(
        reverse("consultations:break-glass", args=[patient.pk]),
        {"reason": BREAK_GLASS, "next": print_url(prescription)},
    )
    assert status(colleague.user) == 200
    assert status(other_clinic_doctor.user) == 404
    assert status(staff_user) == 403
    assert status(patient.user) == 404  # not issued yet
    complete(consultation, actor=doctor.user)
    assert status(patient.user) == 200
    assert status(other_patient.user) == 404
    client.logout()
    assert client.get(print_url(prescription)).status_code == 302  # to the login page
