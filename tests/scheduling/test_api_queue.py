"""The live queue's API: check-in, the doctor's actions, the snapshots; who may do what."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from opd.core.models import Role
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_start, queue_call_next
from tests.conftest import assert_error
from tests.factories import UserFactory

from .queue_helpers import booked, waiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


@pytest.fixture
def foreign_staff(other_org, other_org_clinic):
    return UserFactory(role=Role.STAFF, organization=other_org, is_staff=True, clinics=[other_org_clinic])


def act(client, appointment, action: str):
    return client.post(f"/api/v1/appointments/{appointment.pk}/{action}/", format="json")


# Check-in


def test_reception_checks_a_patient_in_and_gets_the_token(api_as, staff_user, doctor, department):
    appt = booked(staff_user, doctor, department, minutes=30)

    response = act(api_as(staff_user), appt, "check-in")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["appointment_id"] == appt.pk
    assert body["state"] == "waiting"
    assert body["token"] == 1
    assert body["token_label"] == "GEN-1"
    assert body["patient"]["name"] == appt.patient.full_name
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.CHECKED_IN


def test_check_in_is_refused_before_the_clinics_window(api_as, staff_user, doctor, department):
    appt = booked(staff_user, doctor, department, minutes=3 * 60)

    assert_error(act(api_as(staff_user), appt, "check-in"), 409, "checkin_not_open")
    assert Appointment.objects.get(pk=appt.pk).token_number is None


def test_checking_in_twice_is_a_conflict(api_as, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)

    assert_error(act(api_as(staff_user), appt, "check-in"), 409, "invalid_state")


@pytest.mark.parametrize("who", ["doctor", "patient"])
def test_only_clinic_staff_check_patients_in(api_as, staff_user, doctor, department, patient, who):
    appt = booked(staff_user, doctor, department)
    user = {"doctor": doctor.user, "patient": patient.user}[who]

    assert_error(act(api_as(user), appt, "check-in"), 403)


def test_another_clinic_or_organization_gets_404(
    api_as, staff_user, other_clinic_staff, foreign_staff, doctor, department
):
    appt = booked(staff_user, doctor, department)

    for user in (other_clinic_staff, foreign_staff):
        assert_error(act(api_as(user), appt, "check-in"), 404)
    assert_error(api_as(staff_user).post("/api/v1/appointments/abc/check-in/"), 404)


def test_signing_in_is_required(api, staff_user, doctor, department):
    appt = booked(staff_user, doctor, department)

    assert_error(act(api, appt, "check-in"), 401)
    assert_error(api.get(f"/api/v1/doctors/{doctor.pk}/queue/"), 401)


# The doctor's actions


def test_a_doctor_calls_starts_and_completes(api_as, staff_user, doctor, department):
    later = waiting(staff_user, doctor, department, minutes=40)
    first = waiting(staff_user, doctor, department, minutes=10)
    client = api_as(doctor.user)

    called = client.post(f"/api/v1/doctors/{doctor.pk}/queue/call-next/", format="json")
    assert called.status_code == 200, called.content
    assert (called.json()["appointment_id"], called.json()["state"]) == (first.pk, "called")

    assert_error(client.post(f"/api/v1/doctors/{doctor.pk}/queue/call-next/"), 409, "already_serving")
    assert act(client, first, "start").json()["state"] == "in_consultation"
    # Completed through the consultation record only: the appointment's own action points there.
    assert (
        "consultation"
        in assert_error(act(client, first, "complete"), 409, "consultation_required")["message"]
    )
    consultation = client.post("/api/v1/consultations/", {"appointment": first.pk}, format="json").json()
    record = {"vitals_not_taken_reason": "Telephone review", "assessment": "Well", "plan": "None needed"}
    completed = client.post(f"/api/v1/consultations/{consultation['id']}/complete/", record, format="json")
    assert completed.status_code == 200, completed.content
    assert Appointment.objects.get(pk=first.pk).status == AppointmentStatus.COMPLETED
    assert client.post(f"/api/v1/doctors/{doctor.pk}/queue/call-next/").json()["appointment_id"] == later.pk


def test_call_next_answers_409_when_nobody_waits(api_as, doctor):
    assert_error(
        api_as(doctor.user).post(f"/api/v1/doctors/{doctor.pk}/queue/call-next/"), 409, "queue_empty"
    )


def test_call_next_from_the_department_pool(api_as, staff_user, doctor, colleague, department):
    theirs = waiting(staff_user, colleague, department)

    response = api_as(doctor.user).post(
        f"/api/v1/doctors/{doctor.pk}/queue/call-next/", {"pool": True}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["appointment_id"] == theirs.pk
    assert response.json()["doctor_id"] == doctor.pk


def test_call_next_checks_its_body(api_as, doctor):
    client = api_as(doctor.user)
    url = f"/api/v1/doctors/{doctor.pk}/queue/call-next/"

    response = client.post(url, {"pool": "perhaps"}, format="json")
    assert_error(response, 400, "invalid", field="pool")
    assert_error(client.post(url, {"colour": "red"}, format="json"), 400, field="colour")


def test_only_the_doctor_calls_their_next_patient(
    api_as, staff_user, admin_user, doctor, colleague, other_org_doctor
):
    url = f"/api/v1/doctors/{doctor.pk}/queue/call-next/"

    assert_error(api_as(staff_user).post(url), 403)
    assert_error(api_as(admin_user).post(url), 403)
    assert_error(api_as(colleague.user).post(url), 403)
    assert_error(api_as(doctor.user).post(f"/api/v1/doctors/{other_org_doctor.pk}/queue/call-next/"), 404)


def test_start_and_complete_are_for_the_appointments_doctor(
    api_as, staff_user, doctor, colleague, department
):
    appt = waiting(staff_user, doctor, department)

    assert_error(act(api_as(staff_user), appt, "start"), 403)
    assert_error(act(api_as(colleague.user), appt, "start"), 403)
    assert_error(act(api_as(doctor.user), appt, "complete"), 409, "invalid_state")
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.CHECKED_IN


def test_reception_may_skip_recall_and_mark_no_shows(api_as, staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    queue_call_next(actor=doctor.user, doctor=doctor, now=timezone.now() - dt.timedelta(minutes=1))
    client = api_as(staff_user)

    assert act(client, first, "recall").json()["state"] == "called"
    assert act(client, first, "skip").json()["state"] == "waiting"
    assert act(client, second, "no-show").json()["state"] == "no_show"
    assert_error(act(client, second, "recall"), 409, "invalid_state")


def test_a_colleague_cannot_touch_my_patients(api_as, staff_user, doctor, colleague, department):
    appt = waiting(staff_user, doctor, department)

    for action in ("skip", "recall", "no-show", "complete"):
        assert_error(act(api_as(colleague.user), appt, action), 403)


# Snapshots


def test_the_doctor_and_reception_read_the_doctors_queue(api_as, staff_user, admin_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    queue_call_next(actor=doctor.user, doctor=doctor)

    for user in (doctor.user, staff_user, admin_user):
        response = api_as(user).get(f"/api/v1/doctors/{doctor.pk}/queue/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["queue"] == f"doctor:{doctor.pk}"
        assert body["version"] == 3  # booked for today, checked in, called
        assert body["called"][0]["appointment_id"] == appt.pk
        assert body["called"][0]["patient"]["name"] == appt.patient.full_name


def test_nobody_else_reads_a_doctors_queue(
    api_as, patient, colleague, doctor, other_org_doctor, foreign_staff
):
    url = f"/api/v1/doctors/{doctor.pk}/queue/"

    assert_error(api_as(colleague.user).get(url), 403)
    assert_error(api_as(patient.user).get(url), 403)
    assert_error(api_as(foreign_staff).get(url), 404)
    assert_error(api_as(doctor.user).get(f"/api/v1/doctors/{other_org_doctor.pk}/queue/"), 404)


def test_the_clinic_queue_is_for_its_staff_and_names_nobody(
    api_as, staff_user, admin_user, other_clinic_staff, foreign_staff, patient, doctor, department, clinic
):
    appt = waiting(staff_user, doctor, department, priority="NEWS2 high (8)")
    url = f"/api/v1/clinics/{clinic.pk}/queue/"

    for user in (staff_user, admin_user):
        response = api_as(user).get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["doctors"][0]["waiting"][0]["token_label"] == f"GEN-{appt.token_number}"
        text = json.dumps(body)
        assert appt.patient.last_name not in text
        assert appt.patient.mrn not in text
        assert "NEWS2" not in text
    assert_error(api_as(doctor.user).get(url), 403)
    assert_error(api_as(patient.user).get(url), 403)
    assert_error(api_as(other_clinic_staff).get(url), 404)
    assert_error(api_as(foreign_staff).get(url), 404)


def test_a_started_visit_shows_as_current(api_as, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    appointment_start(actor=doctor.user, appointment=appt)

    body = api_as(doctor.user).get(f"/api/v1/doctors/{doctor.pk}/queue/").json()

    assert body["current"]["appointment_id"] == appt.pk
    assert body["counts"]["in_consultation"] == 1


# Undoing a no-show


def test_it_undoes_a_no_show_through_the_api(api_as, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    client = api_as(doctor.user)
    assert act(client, appt, "no-show").json()["state"] == "no_show"

    response = act(client, appt, "undo-no-show")

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "waiting"
    queue = client.get(f"/api/v1/doctors/{doctor.pk}/queue/").json()
    assert [entry["appointment_id"] for entry in queue["waiting"]] == [appt.pk]
    assert queue["waiting"][0]["position"] == 1
    assert queue["done"] == []


def test_reception_may_undo_a_no_show(api_as, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    act(api_as(doctor.user), appt, "no-show")

    assert act(api_as(staff_user), appt, "undo-no-show").status_code == 200


def test_undo_is_refused_after_the_window(api_as, staff_user, doctor, department):
    import time_machine

    appt = waiting(staff_user, doctor, department)
    client = api_as(staff_user)
    act(client, appt, "no-show")

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5, seconds=5)):
        assert_error(act(client, appt, "undo-no-show"), 409, "undo_expired")
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_undo_is_refused_once_the_patient_is_booked_again(api_as, staff_user, doctor, department):
    from scheduling.services import appointment_book

    appt = booked(staff_user, doctor, department, minutes=40)
    client = api_as(staff_user)
    act(client, appt, "no-show")
    appointment_book(actor=staff_user, patient=appt.patient, slot=appt.slot)

    assert_error(act(client, appt, "undo-no-show"), 409, "undo_not_possible")


def test_undo_of_what_is_not_a_no_show_is_a_conflict(api_as, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)

    assert_error(act(api_as(staff_user), appt, "undo-no-show"), 409, "undo_not_possible")


def test_who_may_not_undo_a_no_show(
    api_as, staff_user, other_clinic_staff, foreign_staff, patient, colleague, doctor, department
):
    appt = waiting(staff_user, doctor, department)
    act(api_as(staff_user), appt, "no-show")

    for user in (other_clinic_staff, foreign_staff):
        assert_error(act(api_as(user), appt, "undo-no-show"), 404)
    assert_error(act(api_as(patient.user), appt, "undo-no-show"), 403)
    assert_error(act(api_as(colleague.user), appt, "undo-no-show"), 403)
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_it_undoes_a_skip_through_the_api(
    api_as, staff_user, other_clinic_staff, foreign_staff, patient, doctor, department
):
    import time_machine

    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    client = api_as(staff_user)
    act(client, first, "skip")

    for user in (other_clinic_staff, foreign_staff):
        assert_error(act(api_as(user), first, "undo-skip"), 404)
    assert_error(act(api_as(patient.user), first, "undo-skip"), 403)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5, seconds=5)):
        assert_error(act(client, first, "undo-skip"), 409, "undo_expired")
    response = act(client, first, "undo-skip")

    assert response.status_code == 200, response.content
    queue = client.get(f"/api/v1/doctors/{doctor.pk}/queue/").json()
    assert [entry["appointment_id"] for entry in queue["waiting"]] == [first.pk, second.pk]
    assert_error(act(client, first, "undo-skip"), 409, "undo_not_possible")
