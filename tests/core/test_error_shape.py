"""Every refusal has one shape: {"error": {"code", "message", "fields"}}, whatever raised it."""

import logging

import pytest

from opd.core.api.exceptions import SERVER_ERROR_MESSAGE
from scheduling.services import appointment_book
from tests.factories import SlotFactory

pytestmark = pytest.mark.django_db

APPOINTMENTS = "/api/v1/appointments/"


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fields"], dict)
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())
    return error


def test_it_names_each_invalid_field_of_a_400(api_as, staff_user):
    response = api_as(staff_user).post(APPOINTMENTS, {"slot": "abc", "reason": "x" * 501}, format="json")

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"slot", "reason"}


def test_it_answers_malformed_json_with_a_400(api_as, staff_user):
    error = error_of(api_as(staff_user).post(APPOINTMENTS, "{", content_type="application/json"), 400)

    assert error["code"] == "parse_error"
    assert error["fields"] == {}


def test_it_answers_a_service_validation_failure_with_a_400(api_as, staff_user, patient, doctor, department):
    withdrawn = SlotFactory(doctor=doctor, department=department, is_active=False)

    error = error_of(
        api_as(staff_user).post(APPOINTMENTS, {"slot": withdrawn.pk, "patient": patient.pk}, format="json"),
        400,
    )

    assert error["code"] == "invalid"
    assert error["fields"] == {"slot": ["The slot is not offered."]}


def test_it_answers_an_anonymous_request_with_a_401(api):
    error = error_of(api.get(APPOINTMENTS), 401)

    assert error["code"] == "not_authenticated"


def test_it_answers_a_bad_token_with_a_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert error_of(api.get(APPOINTMENTS), 401)["code"] == "authentication_failed"


def test_it_answers_a_refused_role_with_a_403(api_as, doctor, patient, slot):
    response = api_as(doctor.user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    error = error_of(response, 403)
    assert error["code"] == "permission_denied"
    assert "Doctors" in error["message"]


def test_it_answers_an_unknown_path_id_with_a_404(api_as, staff_user):
    assert error_of(api_as(staff_user).get(f"{APPOINTMENTS}999999/"), 404)["code"] == "not_found"


def test_it_answers_an_unknown_body_id_with_a_404_naming_the_field(api_as, staff_user, patient):
    response = api_as(staff_user).post(APPOINTMENTS, {"slot": 999999, "patient": patient.pk}, format="json")

    error = error_of(response, 404)
    assert error["code"] == "not_found"
    assert list(error["fields"]) == ["slot"]


def test_it_answers_a_page_past_the_end_with_a_404(api_as, staff_user):
    assert error_of(api_as(staff_user).get(APPOINTMENTS, {"page": 9}), 404)["code"] == "not_found"


def test_it_answers_a_method_the_endpoint_lacks_with_a_405(api_as, staff_user):
    assert error_of(api_as(staff_user).delete(APPOINTMENTS), 405)["code"] == "method_not_allowed"


def test_it_answers_a_full_slot_with_a_409(api_as, staff_user, patient, other_patient, doctor, department):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=other_patient, slot=slot)

    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    error = error_of(response, 409)
    assert error["code"] == "slot_full"
    assert error["fields"] == {"slot": ["The slot is full."]}


def test_it_answers_a_reused_idempotency_key_with_a_422(api_as, staff_user, patient, other_patient, slot):
    client = api_as(staff_user)
    client.post(
        APPOINTMENTS,
        {"slot": slot.pk, "patient": patient.pk},
        format="json",
        headers={"Idempotency-Key": "k"},
    )

    response = client.post(
        APPOINTMENTS,
        {"slot": slot.pk, "patient": other_patient.pk},
        format="json",
        headers={"Idempotency-Key": "k"},
    )

    assert error_of(response, 422)["code"] == "idempotency_key_reused"


def test_it_answers_an_unhandled_exception_with_a_bare_json_500_and_logs_it(
    api_as, staff_user, monkeypatch, caplog
):
    def explode(user):
        raise RuntimeError("Ada Lovelace, MRN P0001, is allergic to penicillin")

    monkeypatch.setattr("scheduling.api.booking.appointments_for", explode)
    client = api_as(staff_user)
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="opd.core.api.exceptions"):
        response = client.get(APPOINTMENTS)

    error = error_of(response, 500)
    assert error == {"code": "server_error", "message": SERVER_ERROR_MESSAGE, "fields": {}}
    body = response.content.decode()
    assert "Lovelace" not in body
    assert "RuntimeError" not in body
    assert "Traceback" not in body
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(logged) == 1
    assert APPOINTMENTS in logged[0].getMessage()


@pytest.mark.urls("tests.core.urls_broken")
def test_it_answers_a_plain_django_view_failing_under_api_with_the_json_500(client, caplog):
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="opd.core.api.exceptions"):
        response = client.get("/api/v1/broken/")

    assert error_of(response, 500)["code"] == "server_error"
    assert "division" not in response.content.decode()
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


@pytest.mark.urls("tests.core.urls_broken")
def test_it_leaves_pages_outside_the_api_to_django(client):
    client.raise_request_exception = False

    response = client.get("/broken/")

    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/appointments/%C2%B2/no-show/",  # "²" passes str.isdigit() and then fails int()
        "/api/v1/doctors/%C2%B2/queue/call-next/",
        "/api/v1/appointments/%C2%B2/cancel/",
        "/api/v1/doctors/%C2%B2/availability/",
        "/api/v1/appointments/0.5/",
        "/api/v1/no-such-thing/",
    ],
)
def test_it_answers_a_path_that_is_not_an_id_with_a_json_404(api_as, staff_user, path):
    client = api_as(staff_user)
    client.raise_request_exception = False

    assert error_of(client.post(path, {}, format="json"), 404)["code"] == "not_found"


def test_it_leaves_the_404_page_outside_the_api_to_django(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
