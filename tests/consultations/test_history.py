"""GET /api/v1/patients/{id}/history/: the whole record newest first, paginated, in a fixed number of
queries, showing each reader only what they may see."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consultations.services import care_note_create, prescription_create, result_create
from tests.conftest import BREAK_GLASS, assert_error

from .factories import CALM_VITALS, booked_appointment, open_consultation
from .factories import complete as complete_consultation

pytestmark = pytest.mark.django_db

LINE = {
    "medication": "Ramipril",
    "strength": "5 mg",
    "dose": "1 tablet",
    "frequency": "once a day",
    "quantity": 28,
}


def history_url(patient) -> str:
    return f"/api/v1/patients/{patient.pk}/history/"


def visit(doctor, department, patient, staff_user, clinic, *, complete: bool = True):
    """One visit's worth of record: appointment, consultation with vitals, prescription, result, care note."""
    consultation = open_consultation(doctor=doctor, department=department, patient=patient, **CALM_VITALS)
    prescription_create(actor=doctor.user, consultation=consultation, items=[LINE])
    result_create(actor=doctor.user, consultation=consultation, test_name="eGFR", value="75", unit="mL/min")
    if complete:
        consultation = complete_consultation(consultation, actor=doctor.user)
    care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="observation", text="Comfortable."
    )
    return consultation


def kinds(body) -> list[str]:
    return [entry["kind"] for entry in body["results"]]


def test_it_shows_the_timeline_newest_first(api_as, doctor, department, patient, staff_user, clinic):
    consultation = visit(doctor, department, patient, staff_user, clinic)
    upcoming = booked_appointment(
        doctor=doctor, department=department, patient=patient, minutes_from_now=24 * 60
    )

    response = api_as(doctor.user).get(history_url(patient))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 6
    entries = body["results"]
    assert sorted(kinds(body)) == [
        "appointment",
        "appointment",
        "care_note",
        "consultation",
        "prescription",
        "result",
    ]
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert entries[0] == {**entries[0], "kind": "appointment", "id": upcoming.pk}
    shown = next(e for e in entries if e["kind"] == "consultation")
    assert shown["id"] == consultation.pk
    assert shown["consultation"]["vitals"]["systolic_bp"] == 120
    assert shown["consultation"]["news2"]["total"] == 0
    assert shown["consultation"]["news2"]["band"] == "low"
    prescription = next(e for e in entries if e["kind"] == "prescription")["prescription"]
    assert prescription["items"][0]["medication"] == "Ramipril"
    for entry in entries:
        assert set(entry) == {"kind", "id", "at", entry["kind"]}


def test_it_paginates(api_as, doctor, department, patient, staff_user, clinic):
    visit(doctor, department, patient, staff_user, clinic)
    client = api_as(doctor.user)

    first = client.get(f"{history_url(patient)}?page_size=2").json()
    second = client.get(first["next"]).json()
    everything = client.get(history_url(patient)).json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert [(e["kind"], e["id"]) for e in first["results"] + second["results"]] == [
        (e["kind"], e["id"]) for e in everything["results"][:4]
    ]


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def test_it_answers_in_a_fixed_number_of_queries_however_long_the_history(
    api_as, doctor, department, patient, other_patient, staff_user, clinic
):
    visit(doctor, department, patient, staff_user, clinic)
    for _ in range(6):
        visit(doctor, department, other_patient, staff_user, clinic)
    client = api_as(doctor.user)
    client.get(history_url(patient))  # warm up (token, content types)

    short = queries_for(client, f"{history_url(patient)}?page_size=100")
    long = queries_for(client, f"{history_url(other_patient)}?page_size=100")

    assert client.get(history_url(other_patient)).json()["count"] == 30
    assert short == long
    # Two of them: the doctor's clinical standing, checked on every request; the care relationship;
    # and one INSERT for the page's access rows, however many entries it shows.
    assert long <= 15


def test_a_patient_sees_their_own_completed_record_only(
    api_as, doctor, department, patient, other_patient, staff_user, clinic
):
    done = visit(doctor, department, patient, staff_user, clinic)
    draft = visit(doctor, department, patient, staff_user, clinic, complete=False)
    client = api_as(patient.user)

    body = client.get(history_url(patient)).json()

    shown = {(e["kind"], e["id"]) for e in body["results"]}
    assert ("consultation", done.pk) in shown
    assert ("consultation", draft.pk) not in shown
    assert sorted(kinds(body)) == ["appointment", "appointment", "consultation", "prescription", "result"]
    assert_error(client.get(history_url(other_patient)), 404, "not_found")


@pytest.mark.parametrize("role", ["staff_user", "admin_user"])
def test_staff_and_admins_are_refused(request, api_as, patient, role):
    assert_error(api_as(request.getfixturevalue(role)).get(history_url(patient)), 403, "permission_denied")


def test_another_organizations_patient_is_404(api_as, doctor, other_org_patient, other_org_doctor, patient):
    assert_error(api_as(doctor.user).get(history_url(other_org_patient)), 404, "not_found")
    assert_error(api_as(other_org_doctor.user).get(history_url(patient)), 404, "not_found")


def test_a_doctor_at_another_clinic_sees_nothing_of_this_clinics_record(
    api_as, doctor, other_clinic_doctor, department, patient, staff_user, clinic
):
    visit(doctor, department, patient, staff_user, clinic)

    body = api_as(other_clinic_doctor.user).get(history_url(patient), {"reason": BREAK_GLASS}).json()

    assert body["count"] == 0
    assert body["results"] == []


def test_it_needs_a_signed_in_user(api, patient):
    assert api.get(history_url(patient)).status_code == 401
