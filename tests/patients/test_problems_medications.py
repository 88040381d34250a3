"""The problem list and current medications: the services, their rules, and /api/v1/ by role and tenant
(the same readers and writers as allergies)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent
from patients.models import Medication, Problem
from patients.selectors import active_medications, active_problems
from patients.services import (
    medication_add,
    medication_stop,
    medication_update,
    problem_add,
    problem_resolve,
    problem_update,
)
from scheduling.models import ApprovalStatus
from scheduling.services import doctor_set_approval
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

DIABETES = {"description": "Type 2 diabetes mellitus", "icd10_code": "E11.9"}
METFORMIN = {"name": "Metformin", "dose": "500 mg", "frequency": "twice daily"}


def add_problem(actor, patient, **overrides):
    return problem_add(actor=actor, patient=patient, **{**DIABETES, **overrides})


def add_medication(actor, patient, **overrides):
    return medication_add(actor=actor, patient=patient, **{**METFORMIN, **overrides})


# Problems: services --------------------------------------------------------------------------------------


def test_it_adds_a_problem_with_who_and_when_and_audits_it_without_the_description(doctor, patient):
    problem = add_problem(
        doctor.user, patient, description="  Type 2   diabetes ", onset_date=dt.date(2020, 3, 1)
    )

    stored = Problem.objects.get(pk=problem.pk)
    assert stored.description == "Type 2 diabetes"
    assert (stored.icd10_code, stored.status, stored.onset_date) == ("E11.9", "active", dt.date(2020, 3, 1))
    assert stored.recorded_by == doctor.user
    assert stored.recorded_at is not None
    event = AuditEvent.objects.get(action="problem.added", object_id=str(problem.pk))
    assert event.patient_id == patient.pk
    assert event.data["changes"]["icd10_code"] == {"before": None, "after": "E11.9"}
    assert event.data["changes"]["description"]["redacted"] is True
    assert "diabetes" not in str(event.data)


def test_it_stores_the_description_encrypted(doctor, patient):
    problem = add_problem(doctor.user, patient)
    with connection.cursor() as cursor:
        cursor.execute("SELECT description, icd10_code FROM patients_problem WHERE id = %s", [problem.pk])
        description, code = cursor.fetchone()
    assert "diabetes" not in description
    assert code == "E11.9"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("e11.9", "E11.9"), ("E119", "E11.9"), (" i10 ", "I10"), ("s72.001a", "S72.001A"), ("", "")],
)
def test_it_normalizes_icd10_codes(doctor, patient, typed, stored):
    assert add_problem(doctor.user, patient, icd10_code=typed).icd10_code == stored


@pytest.mark.parametrize("typed", ["11.9", "E1", "EE1.9", "E11.12345", "E11-9", "diabetes"])
def test_it_refuses_a_code_that_is_not_icd10_shaped_and_writes_nothing(doctor, patient, typed):
    with pytest.raises(ValidationFailed) as refused:
        add_problem(doctor.user, patient, icd10_code=typed)
    assert set(refused.value.fields) == {"icd10_code"}
    assert not Problem.objects.exists()
    assert not AuditEvent.objects.filter(action="problem.added").exists()


def test_it_refuses_dates_out_of_order_or_in_the_future(doctor, patient):
    with pytest.raises(ValidationFailed) as refused:
        add_problem(
            doctor.user,
            patient,
            status="resolved",
            onset_date=dt.date(2024, 5, 1),
            resolved_date=dt.date(2024, 4, 1),
        )
    assert "resolved_date" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        add_problem(doctor.user, patient, onset_date=timezone.localdate() + dt.timedelta(days=3))
    assert "onset_date" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        add_problem(doctor.user, patient, resolved_date=dt.date(2024, 4, 1))  # active, yet resolved
    assert "resolved_date" in refused.value.fields
    assert not Problem.objects.exists()


def test_it_resolves_a_problem_today_and_reopens_it(doctor, staff_user, patient):
    problem = add_problem(doctor.user, patient)

    resolved = problem_resolve(actor=staff_user, problem=problem)

    assert (resolved.status, resolved.resolved_date) == ("resolved", timezone.localdate())
    assert active_problems(patient) == []
    event = AuditEvent.objects.get(action="problem.resolved", object_id=str(problem.pk))
    assert event.actor == staff_user
    assert event.data["changes"]["status"] == {"before": "active", "after": "resolved"}

    reopened = problem_update(actor=doctor.user, problem=resolved, status="active")
    assert (reopened.status, reopened.resolved_date) == ("active", None)
    assert active_problems(patient) == [reopened]


def test_it_refuses_to_resolve_a_problem_entered_in_error(doctor, patient):
    problem = problem_update(
        actor=doctor.user, problem=add_problem(doctor.user, patient), status="entered_in_error"
    )
    with pytest.raises(Conflict):
        problem_resolve(actor=doctor.user, problem=problem)
    assert Problem.objects.get().status == "entered_in_error"


def test_an_update_audits_what_changed_and_a_no_change_writes_nothing(doctor, patient):
    problem = add_problem(doctor.user, patient)

    problem_update(actor=doctor.user, problem=problem, icd10_code="e11.65")
    problem_update(actor=doctor.user, problem=problem, icd10_code="E11.65")

    events = AuditEvent.objects.filter(action="problem.updated")
    assert events.count() == 1
    assert events.get().data["changes"] == {"icd10_code": {"before": "E11.9", "after": "E11.65"}}


@pytest.mark.parametrize("who", ["admin_user", "patient_user"])
def test_it_refuses_problem_writers_without_a_clinical_role(request, who, patient, doctor):
    actor = patient.user if who == "patient_user" else request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        add_problem(actor, patient)
    problem = add_problem(doctor.user, patient)
    with pytest.raises(PermissionDenied):
        problem_resolve(actor=actor, problem=problem)
    assert Problem.objects.get().status == "active"


def test_it_refuses_another_organizations_writer(other_org_doctor, patient):
    with pytest.raises(NotFound):
        add_problem(other_org_doctor.user, patient)
    with pytest.raises(NotFound):
        add_medication(other_org_doctor.user, patient)
    assert not Problem.objects.exists()
    assert not Medication.objects.exists()


# Medications: services -----------------------------------------------------------------------------------


def test_it_adds_a_medication_and_stops_it_with_who_and_when(doctor, staff_user, patient):
    medication = add_medication(staff_user, patient, started_on=dt.date(2023, 1, 10))

    assert (medication.name, medication.dose, medication.frequency) == ("Metformin", "500 mg", "twice daily")
    assert medication.recorded_by == staff_user
    assert active_medications(patient) == [medication]
    assert AuditEvent.objects.filter(action="medication.added", object_id=str(medication.pk)).exists()

    stopped = medication_stop(actor=doctor.user, medication=medication, stopped_on=dt.date(2025, 2, 1))

    stored = Medication.objects.get(pk=medication.pk)
    assert (stored.status, stored.stopped_on) == ("stopped", dt.date(2025, 2, 1))
    assert stopped.status == "stopped"
    assert active_medications(patient) == []
    event = AuditEvent.objects.get(action="medication.stopped")
    assert event.data["changes"]["stopped_on"] == {"before": None, "after": "2025-02-01"}


def test_it_refuses_a_stop_before_the_start_and_changes_nothing(doctor, patient):
    medication = add_medication(doctor.user, patient, started_on=dt.date(2025, 1, 10))
    with pytest.raises(ValidationFailed) as refused:
        medication_stop(actor=doctor.user, medication=medication, stopped_on=dt.date(2025, 1, 1))
    assert "stopped_on" in refused.value.fields
    assert Medication.objects.get().status == "active"
    assert not AuditEvent.objects.filter(action="medication.stopped").exists()


def test_it_refuses_a_medication_without_a_name_or_with_unknown_fields(doctor, patient):
    with pytest.raises(ValidationFailed) as refused:
        add_medication(doctor.user, patient, name="  ")
    assert set(refused.value.fields) == {"name"}
    medication = add_medication(doctor.user, patient)
    with pytest.raises(ValidationFailed) as refused:
        medication_update(actor=doctor.user, medication=medication, route="oral")
    assert set(refused.value.fields) == {"route"}


def test_restarting_a_stopped_medication_clears_its_stop_date(doctor, patient):
    medication = medication_stop(actor=doctor.user, medication=add_medication(doctor.user, patient))
    restarted = medication_update(actor=doctor.user, medication=medication, status="active", dose="1 g")
    assert (restarted.status, restarted.stopped_on, restarted.dose) == ("active", None, "1 g")


def test_it_refuses_medication_writers_without_a_clinical_role(admin_user, patient):
    with pytest.raises(PermissionDenied):
        add_medication(admin_user, patient)
    with pytest.raises(PermissionDenied):
        add_medication(patient.user, patient)
    assert not Medication.objects.exists()


# API ----------------------------------------------------------------------------------------------------


def test_it_lists_problems_active_first_and_logs_each_read(api_as, doctor, patient):
    resolved = add_problem(doctor.user, patient, description="Asthma", icd10_code="J45", status="resolved")
    active = add_problem(doctor.user, patient)

    response = api_as(doctor.user).get(f"/api/v1/patients/{patient.pk}/problems/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [(row["id"], row["status"]) for row in body] == [(active.pk, "active"), (resolved.pk, "resolved")]
    assert body[0]["description"] == "Type 2 diabetes mellitus"
    assert body[0]["recorded_by"]["id"] == doctor.user.pk
    assert body[1]["resolved_date"] == timezone.localdate().isoformat()
    assert AuditEvent.objects.filter(
        action="record.viewed", object_type="patients.problem", object_id=str(active.pk), actor=doctor.user
    ).exists()


def test_staff_add_change_and_resolve_a_problem_through_the_api(api_as, staff_user, patient):
    client = api_as(staff_user)
    response = client.post(
        f"/api/v1/patients/{patient.pk}/problems/", {**DIABETES, "icd10_code": "e119"}, format="json"
    )
    assert response.status_code == 201, response.content
    problem_id = response.json()["id"]
    assert response.json()["icd10_code"] == "E11.9"

    response = client.patch(f"/api/v1/problems/{problem_id}/", {"onset_date": "2021-06-01"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["onset_date"] == "2021-06-01"

    response = client.post(
        f"/api/v1/problems/{problem_id}/resolve/", {"resolved_date": "2024-01-02"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["resolved_date"]) == ("resolved", "2024-01-02")
    assert client.get(f"/api/v1/problems/{problem_id}/").json()["status"] == "resolved"


def test_the_api_refuses_a_bad_code_naming_the_field(api_as, doctor, patient):
    response = api_as(doctor.user).post(
        f"/api/v1/patients/{patient.pk}/problems/", {**DIABETES, "icd10_code": "diabetes"}, format="json"
    )
    assert_error(response, 400, fields=["icd10_code"])
    assert not Problem.objects.exists()


def test_the_api_answers_409_for_resolving_an_entry_in_error(api_as, doctor, patient):
    problem = problem_update(
        actor=doctor.user, problem=add_problem(doctor.user, patient), status="entered_in_error"
    )
    medication = medication_update(
        actor=doctor.user, medication=add_medication(doctor.user, patient), status="entered_in_error"
    )
    client = api_as(doctor.user)
    assert_error(client.post(f"/api/v1/problems/{problem.pk}/resolve/"), 409, "entered_in_error")
    assert_error(client.post(f"/api/v1/medications/{medication.pk}/stop/"), 409, "entered_in_error")


def test_doctors_add_and_stop_medications_through_the_api(api_as, doctor, patient):
    client = api_as(doctor.user)
    response = client.post(f"/api/v1/patients/{patient.pk}/medications/", METFORMIN, format="json")
    assert response.status_code == 201, response.content
    medication_id = response.json()["id"]

    response = client.post(f"/api/v1/medications/{medication_id}/stop/")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["stopped_on"]) == (
        "stopped",
        timezone.localdate().isoformat(),
    )

    response = client.get(f"/api/v1/patients/{patient.pk}/medications/")
    assert [row["status"] for row in response.json()] == ["stopped"]
    assert_error(
        client.patch(f"/api/v1/medications/{medication_id}/", {"status": "paused"}, format="json"),
        400,
        fields=["status"],
    )


def test_the_patient_reads_their_own_but_cannot_write(api_as, doctor, patient, other_patient):
    problem = add_problem(doctor.user, patient)
    medication = add_medication(doctor.user, patient)
    own = api_as(patient.user)

    assert own.get(f"/api/v1/patients/{patient.pk}/problems/").status_code == 200
    assert own.get(f"/api/v1/medications/{medication.pk}/").status_code == 200
    assert_error(own.post(f"/api/v1/patients/{patient.pk}/problems/", DIABETES, format="json"), 403)
    assert_error(own.post(f"/api/v1/medications/{medication.pk}/stop/"), 403)
    assert_error(own.patch(f"/api/v1/problems/{problem.pk}/", {"status": "resolved"}, format="json"), 403)

    other = api_as(other_patient.user)
    assert_error(other.get(f"/api/v1/patients/{patient.pk}/medications/"), 404)
    assert_error(other.get(f"/api/v1/problems/{problem.pk}/"), 404)


def test_administrators_are_refused(api_as, admin_user, doctor, patient):
    problem = add_problem(doctor.user, patient)
    client = api_as(admin_user)
    assert_error(client.get(f"/api/v1/patients/{patient.pk}/problems/"), 403)
    assert_error(client.get(f"/api/v1/problems/{problem.pk}/"), 403)
    assert_error(client.post(f"/api/v1/patients/{patient.pk}/medications/", METFORMIN, format="json"), 403)


def test_another_organizations_patient_and_entries_are_404(api_as, doctor, other_org_doctor, patient):
    problem = add_problem(doctor.user, patient)
    medication = add_medication(doctor.user, patient)
    client = api_as(other_org_doctor.user)

    assert_error(client.get(f"/api/v1/patients/{patient.pk}/problems/"), 404)
    assert_error(client.post(f"/api/v1/patients/{patient.pk}/medications/", METFORMIN, format="json"), 404)
    assert_error(client.get(f"/api/v1/problems/{problem.pk}/"), 404)
    assert_error(client.patch(f"/api/v1/problems/{problem.pk}/", {"status": "resolved"}, format="json"), 404)
    assert_error(client.post(f"/api/v1/problems/{problem.pk}/resolve/"), 404)
    assert_error(client.post(f"/api/v1/medications/{medication.pk}/stop/"), 404)
    assert Problem.objects.get().status == "active"
    assert Medication.objects.get().status == "active"


def test_a_suspended_doctor_is_refused(api_as, admin_user, doctor, patient):
    problem = add_problem(doctor.user, patient)
    client = api_as(doctor.user)
    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)

    assert_error(client.get(f"/api/v1/patients/{patient.pk}/problems/"), 403, "no_clinical_standing")
    assert_error(client.post(f"/api/v1/problems/{problem.pk}/resolve/"), 403)
    assert Problem.objects.get().status == "active"
