"""A patient who signed themselves up confirms their e-mail address before their first booking: the
refusal holds at every booking door (portal pages and the API), the link is signed and expires, and a
new one can be asked for."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import time_machine
from django.core import mail, signing
from django.urls import reverse

from opd.core.models import AuditEvent, User
from opd.core.services import email_verification_token
from scheduling.models import Appointment
from tests.conftest import assert_error

from .conftest import make_slot

pytestmark = pytest.mark.django_db

APPOINTMENTS = "/api/v1/appointments/"


def form(**overrides) -> dict:
    data = {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "email": "mary@example.org",
        "password1": "kingston-1805-crimea",
        "password2": "kingston-1805-crimea",
    }
    data.update(overrides)
    return data


def link_in(message) -> str:
    found = re.search(r"https?://\S+/portal/verify-email/\S+/", message.body)
    assert found, message.body
    return found.group(0)


@pytest.fixture
def unverified(patient):
    user = patient.user
    user.email_verified_at = None
    user.save(update_fields=["email_verified_at"])
    return patient


def test_sign_up_sends_a_verification_link_and_leaves_the_account_unverified(client, clinic):
    client.post(f"/portal/c/{clinic.organization.slug}/{clinic.code}/signup/", form())

    user = User.objects.get(username="mary@example.org")
    assert user.email_verified_at is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["mary@example.org"]

    page = client.get(reverse("portal:find"))
    assert "confirm your e-mail address" in page.content.decode()

    response = client.get(link_in(mail.outbox[0]))

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
    event = AuditEvent.objects.filter(action="user.email_verified").get()
    assert event.object_id == str(user.pk)
    assert "confirm your e-mail address" not in client.get(reverse("portal:find")).content.decode()


def test_an_unverified_patient_cannot_book_in_the_portal(client, unverified, doctor, department):
    slot = make_slot(doctor, department)
    client.force_login(unverified.user)

    response = client.post(
        reverse("portal:book", args=[slot.pk]), {"reason": "Cough", "token": str(uuid.uuid4())}
    )

    assert response.status_code == 403
    assert "confirm your e-mail address" in response.content.decode()
    assert not Appointment.objects.exists()


def test_an_unverified_patient_cannot_book_the_first_available_in_the_portal(
    client, unverified, doctor, department
):
    make_slot(doctor, department)
    client.force_login(unverified.user)
    url = reverse("portal:book-first-available", args=[department.pk])

    response = client.post(url, {"reason": "Cough", "token": str(uuid.uuid4())})

    assert response.status_code == 403
    assert "confirm your e-mail address" in response.content.decode()
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("by", ["slot", "department"])
def test_an_unverified_patient_cannot_book_through_the_api(api_as, unverified, doctor, department, by):
    slot = make_slot(doctor, department)
    body = {"slot": slot.pk} if by == "slot" else {"department": department.pk}

    response = api_as(unverified.user).post(APPOINTMENTS, body, format="json")

    assert_error(response, 403, "email_unverified")
    assert "confirm your e-mail address" in response.json()["error"]["message"]
    assert not Appointment.objects.exists()


def test_a_verified_patient_books_through_the_api(api_as, patient, doctor, department):
    slot = make_slot(doctor, department)

    response = api_as(patient.user).post(APPOINTMENTS, {"slot": slot.pk}, format="json")

    assert response.status_code == 201


def test_staff_book_for_an_unverified_patient(api_as, staff_user, unverified, doctor, department):
    slot = make_slot(doctor, department)

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": unverified.pk}, format="json"
    )

    assert response.status_code == 201


def test_the_patient_can_ask_for_a_new_link_which_works(client, unverified):
    client.force_login(unverified.user)

    response = client.post(reverse("portal:verify-email-resend"))

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    client.logout()
    assert client.get(link_in(mail.outbox[0])).status_code == 302
    unverified.user.refresh_from_db()
    assert unverified.user.email_verified_at is not None


def test_resend_is_post_only_and_for_signed_in_patients(client, unverified, staff_user):
    url = reverse("portal:verify-email-resend")
    assert client.post(url).status_code == 302  # to the log-in page
    assert not mail.outbox
    client.force_login(unverified.user)
    assert client.get(url).status_code == 405


def test_an_expired_link_is_refused(client, unverified, settings):
    settings.OPD_EMAIL_VERIFICATION_MAX_AGE = 3600
    token = email_verification_token(user=unverified.user)

    with time_machine.travel(dt.timedelta(hours=2)):
        response = client.get(reverse("portal:verify-email", args=[token]))

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    unverified.user.refresh_from_db()
    assert unverified.user.email_verified_at is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token, user: token[:-2] + ("aa" if not token.endswith("aa") else "bb"),
        lambda token, user: "not-a-token",
        lambda token, user: signing.TimestampSigner(salt="another").sign_object(
            {"user": user.pk, "email": user.email}
        ),
    ],
)
def test_a_tampered_link_is_refused(client, unverified, tamper):
    token = tamper(email_verification_token(user=unverified.user), unverified.user)

    response = client.get(reverse("portal:verify-email", args=[token]))

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    unverified.user.refresh_from_db()
    assert unverified.user.email_verified_at is None


def test_a_link_for_an_address_the_user_no_longer_has_is_refused(client, unverified):
    token = email_verification_token(user=unverified.user)
    unverified.user.email = "new@example.org"
    unverified.user.save(update_fields=["email"])

    response = client.get(reverse("portal:verify-email", args=[token]))

    assert response.status_code == 400
    unverified.user.refresh_from_db()
    assert unverified.user.email_verified_at is None


def test_resending_the_link_is_rate_limited_per_patient(client, unverified, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "verification_resend_user": "2/hour"},
    }
    client.force_login(unverified.user)
    url = reverse("portal:verify-email-resend")
    for _ in range(2):
        assert client.post(url).status_code == 302

    refused = client.post(url)

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "Too many requests" in refused.content.decode()
    assert len(mail.outbox) == 2  # the refused request sent nothing
