"""Sessions end after an idle spell (30 minutes for staff, doctors and admins; longer for patients) and,
however busy, after SESSION_COOKIE_AGE."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from tests.conftest import assert_error

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DASHBOARD = "/queue/dashboard/"
PORTAL = "/portal/appointments/"
API = "/api/v1/clinics/"

pytestmark = pytest.mark.django_db


def at(minutes: float):
    return time_machine.travel(START + dt.timedelta(minutes=minutes), tick=False)


def signed_in(user) -> Client:
    """Signed in at minute 0."""
    client = Client()
    with at(0):
        client.force_login(user)
    return client


def test_it_keeps_a_doctor_signed_in_after_29_idle_minutes(doctor):
    client = signed_in(doctor.user)
    with at(0):
        assert client.get(DASHBOARD).status_code == 200
    with at(29):
        response = client.get(DASHBOARD)

    assert response.status_code == 200
    assert response.context["user"] == doctor.user


def test_it_signs_a_doctor_out_after_31_idle_minutes(doctor):
    client = signed_in(doctor.user)
    with at(0):
        client.get(DASHBOARD)
    with at(31):
        response = client.get(DASHBOARD)
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=%2Fqueue%2Fdashboard%2F"
        login_page = client.get(response["Location"])

    assert "You were signed out after 30 minutes without activity." in login_page.content.decode()
    assert not login_page.context["user"].is_authenticated


def test_it_counts_idle_time_from_the_last_request(doctor):
    client = signed_in(doctor.user)
    for minute in (0, 20, 40, 60):
        with at(minute):
            response = client.get(DASHBOARD)

    assert response.status_code == 200


def test_it_gives_patients_the_longer_idle_timeout(patient, settings):
    settings.OPD_SESSION_IDLE_MINUTES_PATIENT = 120
    client = signed_in(patient.user)
    with at(0):
        client.get(PORTAL)
    with at(119):
        assert client.get(PORTAL).status_code == 200
    with at(240):
        response = client.get(PORTAL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_reads_the_staff_idle_timeout_from_settings(staff_user, settings):
    settings.OPD_SESSION_IDLE_MINUTES_STAFF = 5
    client = signed_in(staff_user)
    with at(0):
        client.get(API)
    with at(6):
        response = client.get(API)

    assert_error(response, 401, "session_expired")


def test_it_answers_an_idle_api_session_with_401_in_the_error_shape(admin_user):
    client = signed_in(admin_user)
    with at(0):
        assert client.get(API).status_code == 200
    with at(31):
        response = client.get(API)
        error = assert_error(response, 401, "session_expired")
        after = client.get(API)

    assert error["message"] == "You were signed out after 30 minutes without activity."
    assert after.status_code == 401  # the session is gone, not just refused once


def test_it_ends_a_busy_session_after_its_absolute_lifetime(doctor, settings):
    settings.SESSION_COOKIE_AGE = 12 * 60 * 60
    client = signed_in(doctor.user)
    minute = 0
    while minute < 12 * 60:
        with at(minute):
            assert client.get(DASHBOARD).status_code == 200
        minute += 25
    with at(12 * 60 + 1):
        response = client.get(DASHBOARD)
        login_page = client.get(response["Location"])

    assert response.status_code == 302
    assert "a session lasts at most 12 hours" in login_page.content.decode()


def test_it_leaves_token_clients_alone(api_as, staff_user):
    client = api_as(staff_user)
    with at(0):
        client.get(API)
    with at(24 * 60):
        response = client.get(API)

    assert response.status_code == 200


def test_it_saves_the_session_at_most_once_a_minute(doctor):
    from django.contrib.sessions.models import Session

    client = signed_in(doctor.user)
    with at(0):
        client.get(DASHBOARD)
    key = client.session.session_key
    saved = Session.objects.get(session_key=key).expire_date
    with at(0.5):
        client.get(DASHBOARD)
    assert Session.objects.get(session_key=key).expire_date == saved
    with at(1.5):
        client.get(DASHBOARD)
    assert Session.objects.get(session_key=key).expire_date > saved


def test_it_sends_an_idle_htmx_request_to_the_login_page_as_a_whole(doctor):
    client = signed_in(doctor.user)
    with at(0):
        client.get(DASHBOARD)
    with at(31):
        response = client.post(
            f"/queue/doctors/{doctor.pk}/call-next/",
            HTTP_HX_REQUEST="true",
            HTTP_HX_CURRENT_URL="http://testserver/queue/dashboard/",
        )

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fqueue%2Fdashboard%2F"
    assert response.content == b""


def test_it_starts_the_lifetime_afresh_when_the_user_signs_in_again(doctor, settings):
    settings.SESSION_COOKIE_AGE = 60 * 60
    client = signed_in(doctor.user)
    with at(0):
        client.get(DASHBOARD)
    with at(50):
        client.force_login(doctor.user)  # the same user again: Django keeps the session's data
    with at(70):
        response = client.get(DASHBOARD)

    assert response.status_code == 200
