"""/api/v1/appointments/{id}/triage/: nurses and doctors record and list triage vitals; every refusal."""

from __future__ import annotations

import pytest

from consultations.models import TriageObservation
from consultations.services import consultation_open, triage_record
from opd.core.models import AuditEvent
from tests.conftest import assert_error
from tests.factories import PatientFactory

from .factories import CALM_VITALS, booked_appointment, checked_in_appointment
from .test_triage import HIGH_VITALS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def url(appointment) -> str:
    return f"/api/v1/appointments/{appointment.pk}/triage/"


def body(vitals: dict) -> dict:
    return {key: (str(value) if key == "temperature" else value) for key, value in vitals.items()}


def test_it_records_a_nurses_vitals_and_answers_the_score_and_response(api_as, nurse, checked_in):
    response = api_as(nurse).post(url(checked_in), body(HIGH_VITALS), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["appointment"] == checked_in.pk
    assert data["recorded_by"] == (nurse.get_full_name() or nurse.username)
    assert data["vitals"]["pulse"] == 125
    assert data["news2"]["total"] == 11
    assert data["news2"]["band"] == "high"
    assert data["news2"]["response"]["level"] == "emergency"
    assert data["rescore_due"] is False
    checked_in.refresh_from_db()
    assert checked_in.is_priority


def test_it_lists_the_observations_newest_first_and_logs_the_read(api_as, nurse, doctor, checked_in):
    first = triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    second = triage_record(actor=nurse, appointment=checked_in, pulse=99)

    for reader in (nurse, doctor.user):
        response = api_as(reader).get(url(checked_in))
        assert response.status_code == 200, response.content
        assert [row["id"] for row in response.json()["results"]] == [second.pk, first.pk]
    assert (
        AuditEvent.objects.filter(
            action="record.viewed", object_type="consultations.triageobservation"
        ).count()
        == 4
    )


def test_a_doctor_of_the_clinic_records_too(api_as, doctor, checked_in):
    response = api_as(doctor.user).post(url(checked_in), body(CALM_VITALS), format="json")

    assert response.status_code == 201, response.content


def test_it_refuses_patients_admins_and_reception_only_staff(
    api_as, patient, admin_user, staff_user, checked_in
):
    for user in (patient.user, admin_user, staff_user):
        client = api_as(user)
        assert_error(client.post(url(checked_in), body(CALM_VITALS), format="json"), 403)
        assert_error(client.get(url(checked_in)), 403)
    assert not TriageObservation.objects.exists()


def test_it_refuses_a_nurse_at_an_appointment_of_a_clinic_where_they_are_not_a_nurse(
    api_as, nurse, clinic, other_clinic, checked_in
):
    from opd.core.models import Membership
    from opd.core.services import membership_add, membership_set_nurse

    # A nurse at the other clinic, reception only at this one.
    membership_add(actor=None, user=nurse, clinic=other_clinic, is_nurse=True)
    membership_set_nurse(
        actor=None, membership=Membership.objects.get(user=nurse, clinic=clinic), is_nurse=False
    )

    assert_error(api_as(nurse).post(url(checked_in), body(CALM_VITALS), format="json"), 403, "not_a_nurse")


def test_it_answers_another_tenants_appointment_with_404(
    api_as, nurse, other_org_doctor, other_org_department
):
    theirs = checked_in_appointment(
        doctor=other_org_doctor,
        department=other_org_department,
        patient=PatientFactory(organization=other_org_department.clinic.organization),
    )

    assert_error(api_as(nurse).post(url(theirs), body(CALM_VITALS), format="json"), 404)
    assert_error(api_as(nurse).get(url(theirs)), 404)
    assert_error(api_as(nurse).get("/api/v1/appointments/999999/triage/"), 404)


def test_it_answers_409_for_a_patient_not_waiting(
    api_as, nurse, doctor, department, other_patient, checked_in
):
    not_checked_in = booked_appointment(doctor=doctor, department=department, patient=other_patient)
    assert_error(
        api_as(nurse).post(url(not_checked_in), body(CALM_VITALS), format="json"), 409, "not_waiting"
    )

    consultation_open(actor=doctor.user, appointment=checked_in)
    assert_error(api_as(nurse).post(url(checked_in), body(CALM_VITALS), format="json"), 409, "not_waiting")
    assert not TriageObservation.objects.exists()


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"pulse": 400}, {"pulse"}),
        ({"spo2": 101, "temperature": "29.0"}, {"spo2", "temperature"}),
        ({"pulse": "fast"}, {"pulse"}),
        ({"consciousness": "Z"}, {"consciousness"}),
        ({"systolic_bp": 100, "diastolic_bp": 110}, {"diastolic_bp"}),
        ({"notes": "feels hot"}, {"notes"}),
    ],
)
def test_it_refuses_bad_values_naming_each_field(api_as, nurse, checked_in, payload, fields):
    response = api_as(nurse).post(url(checked_in), payload, format="json")

    assert_error(response, 400, fields=fields)
    assert not TriageObservation.objects.exists()


def test_the_schema_documents_every_status(api):
    schema = api.get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/v1/appointments/{id}/triage/"]

    assert {"200", "400", "401", "403", "404"} <= set(operations["get"]["responses"])
    assert {"201", "400", "401", "403", "404", "409"} <= set(operations["post"]["responses"])
