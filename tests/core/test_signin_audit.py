"""Sign-ins, failures, lockouts and sign-outs are in the audit trail with where they came from, whichever
door was used; a failure keeps the name tried, never the password."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from opd.core.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
RIGHT = "pass-word-123"  # tests.factories.UserFactory's password
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def page_login(username: str, password: str, ip: str = "192.0.2.10") -> Client:
    client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=BROWSER)
    client.post(reverse("login"), {"username": username, "password": password})
    return client


def token_login(username: str, password: str, ip: str = "192.0.2.20"):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=ip, HTTP_USER_AGENT="opd-cli/1.0"
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_it_records_a_sign_in_on_the_login_page_with_its_address(staff_user):
    page_login("reception", RIGHT)

    [event] = events("user.signed_in")
    assert (event.actor, event.actor_role, event.organization_id) == (
        staff_user,
        "staff",
        staff_user.organization_id,
    )
    assert (event.source_ip, event.user_agent, event.data["method"]) == ("192.0.2.10", BROWSER, "session")


def test_it_records_a_sign_in_for_an_api_token(staff_user):
    assert token_login("reception", RIGHT).status_code == 200

    [event] = events("user.signed_in")
    assert (event.actor, event.source_ip, event.user_agent) == (staff_user, "192.0.2.20", "opd-cli/1.0")
    assert event.data["method"] == "token"


def test_it_records_a_failure_with_the_name_tried_and_no_password(staff_user):
    token_login("reception", "a-wrong-secret-guess")
    page_login("reception", "another-wrong-guess")

    first, second = events("user.signin_failed")
    assert first.organization_id == staff_user.organization_id
    assert (first.object_id, first.data["username"], first.data["known_account"]) == (
        str(staff_user.pk),
        "reception",
        True,
    )
    assert (first.source_ip, first.data["method"]) == ("192.0.2.20", "token")
    assert (second.source_ip, second.data["method"]) == ("192.0.2.10", "session")
    stored = json.dumps([(e.data, e.reason) for e in AuditEvent.objects.all()])
    assert "wrong-secret" not in stored
    assert "another-wrong" not in stored
    assert events("user.signed_in") == []


def test_it_records_a_failure_for_an_unknown_name_outside_any_organization(org):
    token_login("nobody-here", "whatever-it-is")

    [event] = events("user.signin_failed")
    assert event.organization_id is None
    assert (event.data["username"], event.data["known_account"]) == ("nobody-here", False)


def test_it_records_the_lockout_with_the_address(staff_user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        token_login("reception", f"wrong-guess-{n}", ip="198.51.100.7")

    [lockout] = events("user.locked_out")
    assert lockout.organization_id == staff_user.organization_id
    assert (lockout.data["username"], lockout.source_ip) == ("reception", "198.51.100.7")
    assert len(events("user.signin_failed")) == settings.AXES_FAILURE_LIMIT

    # The right password while locked out: refused, and recorded again as a lockout.
    assert token_login("reception", RIGHT, ip="198.51.100.7").status_code == 429
    assert len(events("user.locked_out")) == 2
    assert events("user.signed_in") == []


def test_it_records_a_sign_out(staff_user):
    client = page_login("reception", RIGHT)

    client.post(reverse("logout"))

    [event] = events("user.signed_out")
    assert (event.actor, event.data["reason"], event.source_ip) == (staff_user, "logout", "192.0.2.10")


def test_it_records_an_expired_session_as_expired_not_signed_out(staff_user):
    client = page_login("reception", RIGHT)

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=45), tick=False):
        client.get(reverse("home"))

    [event] = events("user.signed_out")
    assert (event.actor, event.data["reason"]) == (staff_user, "expired")
