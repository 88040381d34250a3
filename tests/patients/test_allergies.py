"""Allergies: the services, the "no known allergies" states, and /api/v1/ by role and tenant."""

from __future__ import annotations

import pytest

from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent
from patients.models import Allergy, AllergyAssessment, AllergyStatus
from patients.selectors import active_allergies, allergy_assessment
from patients.services import allergy_record, allergy_set_no_known_allergies, allergy_update
from scheduling.models import ApprovalStatus
from scheduling.services import doctor_set_approval
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

PENICILLIN = {
    "substance": "Penicillin",
    "category": "drug",
    "severity": "severe",
    "reaction": "Hives and wheeze",
}


def allergies_url(patient) -> str:
    return f"/api/v1/patients/{patient.pk}/allergies/"


def record(actor, patient, **overrides):
    return allergy_record(actor=actor, patient=patient, **{**PENICILLIN, **overrides})


def assessment(patient) -> str:
    patient.refresh_from_db()
    return allergy_assessment(patient, active_allergies(patient))


# Services -----------------------------------------------------------------------------------------------


def test_it_records_an_allergy_with_who_and_when_and_audits_it_without_the_reaction(doctor, patient):
    allergy = record(doctor.user, patient, substance="  Penicillin   V ")

    stored = Allergy.objects.get(pk=allergy.pk)
    assert stored.substance == "Penicillin V"
    assert stored.reaction == "Hives and wheeze"
    assert stored.recorded_by == doctor.user
    assert stored.recorded_at is not None
    event = AuditEvent.objects.get(action="allergy.recorded", object_id=str(allergy.pk))
    assert event.patient_id == patient.pk
    assert event.data["changes"]["substance"] == {"before": None, "after": "Penicillin V"}
    assert event.data["changes"]["reaction"]["redacted"] is True
    assert "Hives" not in str(event.data)


def test_it_stores_the_reaction_encrypted(doctor, patient):
    from django.db import connection

    allergy = record(doctor.user, patient)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reaction, substance FROM patients_allergy WHERE id = %s", [allergy.pk])
        reaction, substance = cursor.fetchone()
    assert "Hives" not in reaction
    assert substance == "Penicillin"


def test_it_refuses_bad_input_naming_the_field_and_writes_nothing(doctor, patient):
    with pytest.raises(ValidationFailed) as refused:
        record(doctor.user, patient, severity="deadly", substance="")

    assert set(refused.value.fields) == {"severity", "substance"}
    assert not Allergy.objects.exists()
    assert not AuditEvent.objects.filter(action="allergy.recorded").exists()


@pytest.mark.parametrize("who", ["admin_user", "patient_user"])
def test_it_refuses_writers_without_a_clinical_role(request, who, patient):
    actor = patient.user if who == "patient_user" else request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        record(actor, patient)
    assert not Allergy.objects.exists()


def test_staff_record_allergies_too(staff_user, patient):
    allergy = record(staff_user, patient)
    assert allergy.recorded_by == staff_user


def test_it_starts_as_not_recorded_and_records_no_known_allergies_with_who_and_when(staff_user, patient):
    assert assessment(patient) == AllergyAssessment.NOT_RECORDED

    allergy_set_no_known_allergies(actor=staff_user, patient=patient)

    patient.refresh_from_db()
    assert assessment(patient) == AllergyAssessment.NO_KNOWN_ALLERGIES
    assert patient.no_known_allergies_by == staff_user
    assert patient.no_known_allergies_at is not None
    assert AuditEvent.objects.filter(action="patient.no_known_allergies", patient_id=patient.pk).exists()


def test_recording_an_active_allergy_clears_no_known_allergies(doctor, staff_user, patient):
    allergy_set_no_known_allergies(actor=staff_user, patient=patient)

    record(doctor.user, patient)

    patient.refresh_from_db()
    assert patient.no_known_allergies_at is None
    assert patient.no_known_allergies_by is None
    assert assessment(patient) == AllergyAssessment.HAS_ALLERGIES
    assert AuditEvent.objects.filter(action="patient.no_known_allergies_cleared").exists()


def test_an_inactive_allergy_leaves_no_known_allergies_in_place(doctor, staff_user, patient):
    allergy_set_no_known_allergies(actor=staff_user, patient=patient)
    record(doctor.user, patient, status=AllergyStatus.INACTIVE)
    assert assessment(patient) == AllergyAssessment.NO_KNOWN_ALLERGIES


def test_it_refuses_no_known_allergies_while_an_allergy_is_active(doctor, patient):
    record(doctor.user, patient)

    with pytest.raises(Conflict) as refused:
        allergy_set_no_known_allergies(actor=doctor.user, patient=patient)

    assert refused.value.code == "active_allergies"
    assert "Penicillin" in refused.value.message
    patient.refresh_from_db()
    assert patient.no_known_allergies_at is None


def test_an_allergy_entered_in_error_leaves_the_record_not_recorded(doctor, patient):
    allergy = record(doctor.user, patient)

    allergy_update(actor=doctor.user, allergy=allergy, status=AllergyStatus.ENTERED_IN_ERROR)

    assert assessment(patient) == AllergyAssessment.NOT_RECORDED
    allergy_set_no_known_allergies(actor=doctor.user, patient=patient)
    assert assessment(patient) == AllergyAssessment.NO_KNOWN_ALLERGIES


def test_it_audits_an_update_with_before_and_after(doctor, patient):
    allergy = record(doctor.user, patient)

    allergy_update(actor=doctor.user, allergy=allergy, severity="life_threatening", reaction="Anaphylaxis")

    event = AuditEvent.objects.get(action="allergy.updated", object_id=str(allergy.pk))
    assert event.data["changes"]["severity"] == {"before": "severe", "after": "life_threatening"}
    assert event.data["changes"]["reaction"]["redacted"] is True
    assert "Anaphylaxis" not in str(event.data)
    assert Allergy.objects.get(pk=allergy.pk).reaction == "Anaphylaxis"


def test_it_refuses_an_update_with_a_bad_value_and_changes_nothing(doctor, patient):
    allergy = record(doctor.user, patient)

    with pytest.raises(ValidationFailed) as refused:
        allergy_update(actor=doctor.user, allergy=allergy, status="gone", substance="Latex")

    assert "status" in refused.value.fields
    stored = Allergy.objects.get(pk=allergy.pk)
    assert (stored.status, stored.substance) == ("active", "Penicillin")
    assert not AuditEvent.objects.filter(action="allergy.updated").exists()


def test_it_refuses_another_organizations_writer(other_org_doctor, patient):
    with pytest.raises(NotFound):
        record(other_org_doctor.user, patient)
    assert not Allergy.objects.exists()


# API ----------------------------------------------------------------------------------------------------


def test_it_lists_a_patients_allergies_with_the_assessment_and_logs_the_read(api_as, doctor, patient):
    allergy = record(doctor.user, patient)
    record(doctor.user, patient, substance="Latex", category="environmental", status="inactive")

    response = api_as(doctor.user).get(allergies_url(patient))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assessment"] == "has_allergies"
    assert [row["substance"] for row in body["allergies"]] == ["Penicillin", "Latex"]
    first = body["allergies"][0]
    assert first["reaction"] == "Hives and wheeze"
    assert first["recorded_by"]["id"] == doctor.user.pk
    assert AuditEvent.objects.filter(
        action="record.viewed", object_type="patients.allergy", object_id=str(allergy.pk), actor=doctor.user
    ).exists()


def test_staff_record_an_allergy_through_the_api(api_as, staff_user, patient):
    response = api_as(staff_user).post(allergies_url(patient), PENICILLIN, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["substance"] == "Penicillin"
    assert Allergy.objects.get().recorded_by == staff_user


def test_the_api_refuses_bad_input_naming_the_field(api_as, doctor, patient):
    response = api_as(doctor.user).post(
        allergies_url(patient), {**PENICILLIN, "severity": "deadly"}, format="json"
    )
    assert_error(response, 400, fields=["severity"])
    assert not Allergy.objects.exists()


def test_the_patient_reads_their_own_allergies_but_cannot_write(api_as, doctor, patient):
    allergy = record(doctor.user, patient)
    client = api_as(patient.user)

    assert client.get(allergies_url(patient)).status_code == 200
    assert client.get(f"/api/v1/allergies/{allergy.pk}/").status_code == 200
    assert_error(client.post(allergies_url(patient), PENICILLIN, format="json"), 403)
    assert_error(client.patch(f"/api/v1/allergies/{allergy.pk}/", {"status": "inactive"}, format="json"), 403)
    assert_error(client.post(f"{allergies_url(patient)}no-known/"), 403)


def test_another_patient_cannot_read_them(api_as, doctor, patient, other_patient):
    allergy = record(doctor.user, patient)
    client = api_as(other_patient.user)

    assert_error(client.get(allergies_url(patient)), 404)
    assert_error(client.get(f"/api/v1/allergies/{allergy.pk}/"), 404)


def test_administrators_are_refused(api_as, admin_user, doctor, patient):
    allergy = record(doctor.user, patient)
    client = api_as(admin_user)

    assert_error(client.get(allergies_url(patient)), 403)
    assert_error(client.get(f"/api/v1/allergies/{allergy.pk}/"), 403)
    assert_error(client.post(allergies_url(patient), PENICILLIN, format="json"), 403)


def test_another_organizations_patient_and_allergy_are_404(api_as, doctor, other_org_doctor, patient):
    allergy = record(doctor.user, patient)
    client = api_as(other_org_doctor.user)

    assert_error(client.get(allergies_url(patient)), 404)
    assert_error(client.post(allergies_url(patient), PENICILLIN, format="json"), 404)
    assert_error(client.get(f"/api/v1/allergies/{allergy.pk}/"), 404)
    assert_error(client.patch(f"/api/v1/allergies/{allergy.pk}/", {"status": "inactive"}, format="json"), 404)
    assert Allergy.objects.get().status == "active"


def test_a_suspended_doctor_is_refused(api_as, admin_user, doctor, patient):
    allergy = record(doctor.user, patient)
    client = api_as(doctor.user)
    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)

    assert_error(client.get(allergies_url(patient)), 403, "no_clinical_standing")
    assert_error(client.patch(f"/api/v1/allergies/{allergy.pk}/", {"status": "inactive"}, format="json"), 403)
    with pytest.raises(PermissionDenied):
        record(type(doctor.user).objects.get(pk=doctor.user.pk), patient)


def test_it_patches_an_allergy_status_through_the_api(api_as, doctor, patient):
    allergy = record(doctor.user, patient)

    response = api_as(doctor.user).patch(
        f"/api/v1/allergies/{allergy.pk}/", {"status": "entered_in_error"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "entered_in_error"
    assert api_as(doctor.user).get(allergies_url(patient)).json()["assessment"] == "not_recorded"


def test_no_known_allergies_through_the_api_and_its_refusal(api_as, staff_user, doctor, patient):
    client = api_as(staff_user)
    response = client.post(f"{allergies_url(patient)}no-known/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assessment"] == "no_known_allergies"
    assert body["no_known_allergies_by"]["id"] == staff_user.pk
    assert body["no_known_allergies_at"]

    record(doctor.user, patient)
    assert_error(client.post(f"{allergies_url(patient)}no-known/"), 409, "active_allergies")
