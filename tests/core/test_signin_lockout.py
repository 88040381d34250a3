"""django-axes locks sign-in after repeated failures, per account and per address, on every door: the API's
token endpoint, the login page and the admin's login. Time or an administrator unlocks it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
RIGHT = "pass-word-123"  # tests.factories.UserFactory's password
COOL_OFF_SECONDS = int(settings.AXES_COOLOFF_TIME.total_seconds())


def token(username: str, password: str, ip: str = "10.0.0.1"):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail_until_locked(username: str = "reception", ips=None):
    """The configured number of failures; the last one already answers the lockout."""
    limit = settings.AXES_FAILURE_LIMIT
    ips = ips or ["10.0.0.1"] * limit
    answers = [token(username, f"wrong-guess-{n}", ip=ips[n]) for n in range(limit)]
    for answer in answers[:-1]:
        assert_error(answer, 400, "invalid")
    return answers[-1]


def assert_locked_out(response):
    error = assert_error(response, 429, "locked_out")
    assert "Too many failed sign-in attempts" in error["message"]
    assert response["Retry-After"] == str(COOL_OFF_SECONDS)
    assert "token" not in response.json()


def test_it_locks_an_account_after_repeated_failures_from_any_address(staff_user):
    addresses = [f"10.0.1.{n}" for n in range(settings.AXES_FAILURE_LIMIT)]
    assert_locked_out(fail_until_locked("reception", ips=addresses))

    # The right password, from an address that never failed: still refused, and no token.
    assert_locked_out(token("reception", RIGHT, ip="10.9.9.9"))


def test_it_locks_an_address_that_guesses_across_accounts(staff_user, doctor):
    limit = settings.AXES_FAILURE_LIMIT
    answers = [token(f"someone-{n}", "wrong-guess", ip="10.0.2.1") for n in range(limit)]
    assert_locked_out(answers[-1])

    assert_locked_out(token("reception", RIGHT, ip="10.0.2.1"))
    # Elsewhere, the account itself is fine.
    assert token("reception", RIGHT, ip="10.0.2.2").status_code == 200


def test_a_success_before_the_limit_starts_the_count_again(staff_user):
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit - 1):
        assert token("reception", f"wrong-{n}").status_code == 400
    assert token("reception", RIGHT).status_code == 200
    for n in range(limit - 1):
        assert token("reception", f"wrong-again-{n}").status_code == 400
    assert token("reception", RIGHT).status_code == 200


def test_the_lockout_ends_after_the_cool_off(staff_user):
    assert_locked_out(fail_until_locked())
    later = timezone.now() + settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=30)
    with time_machine.travel(later, tick=False):
        assert_locked_out(token("reception", RIGHT))  # and this attempt starts the cool-off again
    with time_machine.travel(later + settings.AXES_COOLOFF_TIME + dt.timedelta(seconds=1), tick=False):
        assert token("reception", RIGHT).status_code == 200


def test_the_reset_command_unlocks_an_account(staff_user):
    addresses = [f"10.0.3.{n}" for n in range(settings.AXES_FAILURE_LIMIT)]
    assert_locked_out(fail_until_locked("reception", ips=addresses))

    call_command("axes_reset_username", "reception")

    assert token("reception", RIGHT, ip="10.0.3.0").status_code == 200


def test_a_superuser_unlocks_an_account_in_the_admin(client, staff_user, superuser):
    assert_locked_out(fail_until_locked())
    attempt = AccessAttempt.objects.get(username="reception")
    client.force_login(superuser)

    changelist = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert changelist.status_code == 200
    assert "reception" in changelist.content.decode()
    response = client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert token("reception", RIGHT).status_code == 200


def test_an_organization_admin_cannot_see_or_lift_lockouts(client, staff_user, admin_user):
    """Attempts name usernames and addresses of every organization: they are the platform's, not one
    organization's, so only a superuser (or `manage.py axes_reset_username`) lifts a lockout."""
    fail_until_locked()
    client.force_login(admin_user)

    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    attempt = AccessAttempt.objects.get(username="reception")
    response = client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


def test_the_stored_attempts_keep_no_password(staff_user):
    fail_until_locked()
    for attempt in AccessAttempt.objects.all():
        assert "wrong-guess" not in attempt.post_data


# The pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_a_login_page_shows_the_lockout_and_lets_no_one_in(client, staff_user, url_name):
    url = reverse(url_name)
    limit = settings.AXES_FAILURE_LIMIT
    answers = [client.post(url, {"username": "reception", "password": f"wrong-{n}"}) for n in range(limit)]
    assert answers[0].status_code == 200  # the form again, with its error

    for response in (answers[-1], client.post(url, {"username": "reception", "password": RIGHT})):
        assert response.status_code == 429
        assert response["Retry-After"] == str(COOL_OFF_SECONDS)
        page = response.content.decode()
        assert "Sign-in paused" in page
        assert "Too many failed sign-in attempts" in page
    assert "_auth_user_id" not in client.session


def test_the_login_page_counts_with_the_api(client, staff_user):
    """One count for every door: failures on the API lock the login page too."""
    fail_until_locked(ips=["127.0.0.1"] * settings.AXES_FAILURE_LIMIT)

    response = client.post(reverse("login"), {"username": "reception", "password": RIGHT})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_options_on_the_token_endpoint_answers_without_signing_anyone_in(staff_user):
    response = APIClient().options(TOKEN_URL, {"username": "reception", "password": RIGHT})

    assert response.status_code == 200
    staff_user.refresh_from_db()
    assert staff_user.last_login is None
