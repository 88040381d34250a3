"""Rate limits on sign-in, sign-up, password reset and booking: 429 with Retry-After, in the error shape on
the API and as a page elsewhere; per account and per address. The rates are settings; these tests set
small ones so a handful of requests reaches them."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from opd.core.api.views import SchemaView
from opd.core.models import User
from scheduling.models import Appointment
from tests.conftest import assert_error, future_slot

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
APPOINTMENTS = "/api/v1/appointments/"


@pytest.fixture
def rates(settings):
    def set_rates(**rates: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


def assert_throttled(response) -> None:
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 3600


def assert_throttled_page(response) -> None:
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    page = response.content.decode()
    assert "Too many requests" in page
    assert "too many attempts" in page


# Sign-in --------------------------------------------------------------------------------------------------


def test_the_token_endpoint_is_throttled_per_address(staff_user, rates):
    rates(signin_ip="3/min")
    for _ in range(3):
        assert (
            APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"}).status_code
            == 200
        )

    refused = APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"})

    assert_throttled(refused)
    assert "token" not in refused.json()
    other = APIClient().post(
        TOKEN_URL, {"username": "reception", "password": "pass-word-123"}, REMOTE_ADDR="10.1.1.1"
    )
    assert other.status_code == 200


def test_the_login_page_is_throttled_per_address(client, staff_user, rates):
    rates(signin_ip="2/min")
    for _ in range(2):
        client.post(reverse("login"), {"username": "reception", "password": "pass-word-123"})
        client.logout()

    assert_throttled_page(
        client.post(reverse("login"), {"username": "reception", "password": "pass-word-123"})
    )
    assert client.get(reverse("login")).status_code == 200  # reading the form is not an attempt


# Sign-up --------------------------------------------------------------------------------------------------


def signup_form(email: str) -> dict:
    return {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "email": email,
        "phone": "",
        "password1": "kingston-1805-crimea",
        "password2": "kingston-1805-crimea",
    }


def test_sign_up_is_throttled_per_address(client, clinic, rates):
    rates(signup_ip="2/hour")
    for n in range(2):
        client.post(
            reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
            signup_form(f"person{n}@example.org"),
        )
        client.logout()

    refused = client.post(
        reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
        signup_form("person9@example.org"),
    )

    assert_throttled_page(refused)
    assert not User.objects.filter(username="person9@example.org").exists()


def test_sign_up_is_throttled_per_email_address(client, clinic, rates):
    rates(signup_user="2/hour")
    for n in range(2):
        answer = client.post(
            reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
            {**signup_form("same@example.org"), "password2": "differs"},
            REMOTE_ADDR=f"10.2.0.{n}",
        )
        assert answer.status_code == 400

    refused = client.post(
        reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
        signup_form("SAME@example.org"),
        REMOTE_ADDR="10.2.0.9",
    )

    assert_throttled_page(refused)


# Password reset -------------------------------------------------------------------------------------------


def test_password_reset_is_throttled_per_email_address(client, patient, rates):
    rates(password_reset_user="2/hour")
    for n in range(2):
        client.post(reverse("password_reset"), {"email": "pat@example.org"}, REMOTE_ADDR=f"10.3.0.{n}")
    assert len(mail.outbox) == 2

    refused = client.post(reverse("password_reset"), {"email": "pat@example.org"}, REMOTE_ADDR="10.3.0.9")

    assert_throttled_page(refused)
    assert len(mail.outbox) == 2


def test_password_reset_is_throttled_per_address(client, patient, rates):
    rates(password_reset_ip="2/hour")
    for n in range(2):
        client.post(reverse("password_reset"), {"email": f"someone{n}@example.org"})

    assert_throttled_page(client.post(reverse("password_reset"), {"email": "pat@example.org"}))
    assert mail.outbox == []


# Booking --------------------------------------------------------------------------------------------------


def test_booking_through_the_api_is_throttled_per_patient(api_as, patient, doctor, department, rates):
    rates(booking_patient="2/hour")
    client = api_as(patient.user)
    for _ in range(2):
        assert client.post(APPOINTMENTS, {"slot": future_slot(doctor, department).pk}).status_code == 201

    refused = client.post(APPOINTMENTS, {"slot": future_slot(doctor, department).pk})

    assert_throttled(refused)
    assert Appointment.objects.count() == 2
    assert client.get(APPOINTMENTS).status_code == 200  # reading is not booking


def test_booking_through_the_api_is_throttled_per_user_for_staff(
    api_as, staff_user, patient, other_patient, doctor, department, rates
):
    rates(booking_user="1/hour", booking_patient="100/hour")
    client = api_as(staff_user)
    body = {"slot": future_slot(doctor, department).pk, "patient": patient.pk}
    assert client.post(APPOINTMENTS, body).status_code == 201

    refused = client.post(
        APPOINTMENTS, {"slot": future_slot(doctor, department).pk, "patient": other_patient.pk}
    )

    assert_throttled(refused)


def test_booking_through_the_api_is_throttled_per_address(
    api_as, patient, other_patient, doctor, department, rates
):
    rates(booking_ip="1/hour")
    assert (
        api_as(patient.user).post(APPOINTMENTS, {"slot": future_slot(doctor, department).pk}).status_code
        == 201
    )

    refused = api_as(other_patient.user).post(APPOINTMENTS, {"slot": future_slot(doctor, department).pk})

    assert_throttled(refused)


def test_booking_in_the_portal_is_throttled_per_patient(client, patient, doctor, department, rates):
    rates(booking_patient="1/hour")
    client.force_login(patient.user)
    first = future_slot(doctor, department)
    booked = client.post(
        reverse("portal:book", args=[first.pk]), {"reason": "Cough", "token": str(uuid.uuid4())}
    )
    assert booked.status_code == 302
    second = future_slot(doctor, department)
    assert client.get(reverse("portal:book", args=[second.pk])).status_code == 200

    refused = client.post(
        reverse("portal:book", args=[second.pk]), {"reason": "Cough", "token": str(uuid.uuid4())}
    )

    assert_throttled_page(refused)
    assert Appointment.objects.count() == 1


# The contract ---------------------------------------------------------------------------------------------


def test_the_schema_documents_429_with_retry_after_where_it_can_happen():
    SchemaView._built.clear()
    schema = APIClient().get("/api/schema/?format=json").json()
    paths = schema["paths"]

    for path, method in ((TOKEN_URL, "post"), (APPOINTMENTS, "post")):
        answer = paths[path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"], path
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "429" not in paths[APPOINTMENTS]["get"]["responses"]
    assert "429" not in paths["/api/v1/appointments/{id}/cancel/"]["post"]["responses"]
