"""The safety-data page (/patients/{id}/safety/): allergies, problems and medications with their forms,
for doctors and staff; refusals for everyone else; reads logged."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import AuditEvent
from patients.models import Allergy, Medication, Problem
from patients.services import medication_add, problem_add

pytestmark = pytest.mark.django_db


def url(patient, *parts) -> str:
    if not parts:
        return reverse("patients:safety", args=[patient.pk])
    if parts[0] == "no-known":
        return reverse("patients:no-known-allergies", args=[patient.pk])
    if len(parts) == 1:
        return reverse("patients:safety-add", args=[patient.pk, parts[0]])
    if len(parts) == 2:
        return reverse("patients:safety-edit", args=[patient.pk, *parts])
    return reverse("patients:safety-close", args=[patient.pk, parts[0], parts[1]])


def test_a_doctor_sees_the_three_lists_and_each_read_is_logged(client, doctor, patient):
    problem = problem_add(actor=doctor.user, patient=patient, description="Asthma", icd10_code="J45")
    medication_add(actor=doctor.user, patient=patient, name="Salbutamol", dose="100 mcg")
    client.force_login(doctor.user)

    response = client.get(url(patient))

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Allergies not recorded", "Asthma", "J45", "Salbutamol", "100 mcg", "Add a problem"):
        assert text in html
    assert AuditEvent.objects.filter(
        action="record.viewed", object_type="patients.problem", object_id=str(problem.pk)
    ).exists()


def test_staff_add_each_kind_of_entry_with_plain_forms(client, staff_user, patient):
    client.force_login(staff_user)

    client.post(
        url(patient, "allergies"),
        {
            "allergy-substance": "Amoxicillin",
            "allergy-category": "drug",
            "allergy-severity": "severe",
            "allergy-status": "active",
        },
    )
    client.post(
        url(patient, "problems"),
        {"problem-description": "Hypertension", "problem-icd10_code": "i10", "problem-status": "active"},
    )
    response = client.post(
        url(patient, "medications"),
        {
            "medication-name": "Amlodipine",
            "medication-dose": "5 mg",
            "medication-status": "active",
            "next": "/queue/dashboard/",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == url(patient) + "?next=%2Fqueue%2Fdashboard%2F"
    assert Allergy.objects.get().substance == "Amoxicillin"
    assert Problem.objects.get().icd10_code == "I10"
    assert Medication.objects.get().recorded_by == staff_user
    assert AuditEvent.objects.filter(action="medication.added", actor=staff_user).exists()


def test_bad_input_is_shown_beside_the_field_and_nothing_written(client, doctor, patient):
    client.force_login(doctor.user)

    response = client.post(
        url(patient, "problems"),
        {"problem-description": "Hypertension", "problem-icd10_code": "high", "problem-status": "active"},
    )

    assert response.status_code == 400
    assert "Enter an ICD-10 code" in response.content.decode()
    assert 'id="id_problem-icd10_code_error"' in response.content.decode()
    assert not Problem.objects.exists()


def test_a_doctor_edits_resolves_and_stops_entries(client, doctor, patient):
    problem = problem_add(actor=doctor.user, patient=patient, description="Asthma")
    medication = medication_add(actor=doctor.user, patient=patient, name="Salbutamol")
    client.force_login(doctor.user)

    assert client.get(url(patient, "problems", problem.pk)).status_code == 200
    response = client.post(
        url(patient, "problems", problem.pk),
        {"description": "Asthma, moderate", "icd10_code": "j45.4", "status": "active"},
    )
    assert response.status_code == 302
    problem.refresh_from_db()
    assert (problem.description, problem.icd10_code) == ("Asthma, moderate", "J45.4")

    client.post(url(patient, "problems", problem.pk, "close"))
    client.post(url(patient, "medications", medication.pk, "close"))
    assert Problem.objects.get().status == "resolved"
    assert Medication.objects.get().status == "stopped"
    assert AuditEvent.objects.filter(action="problem.resolved").exists()


def test_no_known_allergies_from_the_page(client, staff_user, patient):
    client.force_login(staff_user)
    client.post(url(patient, "no-known"))
    patient.refresh_from_db()
    assert patient.no_known_allergies_by == staff_user
    assert "No known allergies" in client.get(url(patient)).content.decode()


@pytest.mark.parametrize("who", ["admin_user", "patient_user"])
def test_administrators_and_patients_are_refused(request, client, who, patient):
    user = patient.user if who == "patient_user" else request.getfixturevalue(who)
    client.force_login(user)
    assert client.get(url(patient)).status_code == 403
    assert (
        client.post(
            url(patient, "problems"), {"problem-description": "X", "problem-status": "active"}
        ).status_code
        == 403
    )
    assert not Problem.objects.exists()


def test_another_organizations_patient_and_entry_are_404(client, doctor, other_org_doctor, patient):
    problem = problem_add(actor=doctor.user, patient=patient, description="Asthma")
    client.force_login(other_org_doctor.user)
    assert client.get(url(patient)).status_code == 404
    assert client.post(url(patient, "problems", problem.pk, "close")).status_code == 404
    assert Problem.objects.get().status == "active"


def test_an_entry_of_another_patient_is_404_under_this_one(client, doctor, patient, other_patient):
    problem = problem_add(actor=doctor.user, patient=other_patient, description="Asthma")
    client.force_login(doctor.user)
    assert client.get(url(patient, "problems", problem.pk)).status_code == 404
    assert client.get(url(patient, "bandages", problem.pk)).status_code == 404


def test_an_outside_next_address_is_ignored(client, doctor, patient):
    client.force_login(doctor.user)
    response = client.get(url(patient) + "?next=https://evil.example/")
    assert "evil.example" not in response.content.decode()
