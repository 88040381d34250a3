import datetime as dt
import logging

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from opd.core.log_redaction import redact
from opd.core.models import ApiToken, AuditEvent
from opd.core.services import user_deactivate, user_set_password
from tests.conftest import assert_error, token_for

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"
LOGOUT_URL = "/api/v1/auth/logout/"
CREDENTIALS = {"username": "reception", "password": "pass-word-123"}


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def sign_in() -> dict:
    response = APIClient().post(TOKEN_URL, CREDENTIALS, HTTP_USER_AGENT="clinic-kiosk/1.0")
    assert response.status_code == 200
    return response.json()


def test_it_issues_a_token_that_opens_the_api_until_it_expires(staff_user):
    body = sign_in()

    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert expires_at - timezone.now() == pytest.approx(
        dt.timedelta(hours=settings.OPD_TOKEN_TTL_HOURS), abs=dt.timedelta(minutes=1)
    )
    assert with_token(body["token"]).get("/api/v1/clinics/").status_code == 200


def test_it_gives_a_new_token_on_each_sign_in(staff_user):
    first, second = sign_in(), sign_in()

    assert first["token"] != second["token"]
    assert ApiToken.objects.filter(user=staff_user).count() == 2


def test_it_keeps_only_a_digest_of_the_key(staff_user):
    key = sign_in()["token"]

    row = ApiToken.objects.values().get(user=staff_user)
    assert key not in str(row)
    assert row["prefix"] == key[:8]
    assert row["name"] == "clinic-kiosk/1.0"
    assert len(row["digest"]) == 64


@pytest.mark.parametrize(
    "body",
    [
        {"username": "reception", "password": "wrong-password"},
        {"username": "nobody", "password": "pass-word-123"},
        {"username": "reception"},
    ],
)
def test_it_refuses_bad_credentials_without_a_token(staff_user, body):
    response = APIClient().post(TOKEN_URL, body)

    error = assert_error(response, 400, "invalid")
    assert "token" not in response.json()
    assert error["fields"]
    assert not ApiToken.objects.exists()


def test_it_refuses_an_inactive_user(staff_user):
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    response = APIClient().post(TOKEN_URL, CREDENTIALS)

    assert_error(response, 400, "invalid")
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "url", ["/api/v1/organizations/", "/api/v1/clinics/", "/api/v1/patients/", "/api/v1/doctors/"]
)
def test_it_answers_401_without_credentials(url):
    response = APIClient().get(url)

    assert_error(response, 401, "not_authenticated")


def test_it_answers_401_for_an_unknown_token(staff_user):
    response = with_token("0123456789abcdef0123456789abcdef01234567").get("/api/v1/patients/")

    assert_error(response, 401, "authentication_failed")


def test_it_answers_401_for_an_expired_token(staff_user):
    key = token_for(staff_user)
    later = timezone.now() + dt.timedelta(hours=settings.OPD_TOKEN_TTL_HOURS, seconds=1)

    with time_machine.travel(later, tick=False):
        response = with_token(key).get("/api/v1/clinics/")

    error = assert_error(response, 401, "authentication_failed")
    assert error["message"] == "Token expired."


def test_the_token_lifetime_is_a_setting(staff_user, settings):
    settings.OPD_TOKEN_TTL_HOURS = 1
    key = token_for(staff_user)

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=59), tick=False):
        assert with_token(key).get("/api/v1/clinics/").status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=61), tick=False):
        assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")


def test_it_notes_when_a_token_was_last_used_at_most_once_a_minute(staff_user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        key = token_for(staff_user)  # signing in is the first use
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        with_token(key).get("/api/v1/clinics/")
    assert ApiToken.objects.get(user=staff_user).last_used_at == start  # no write for every request

    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        with_token(key).get("/api/v1/clinics/")
    assert ApiToken.objects.get(user=staff_user).last_used_at == start + dt.timedelta(seconds=61)


def test_logout_revokes_the_token_it_was_sent_with(staff_user):
    key, other = token_for(staff_user), token_for(staff_user)

    response = with_token(key).post(LOGOUT_URL)

    assert response.status_code == 204
    error = assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")
    assert error["message"] == "Token revoked."
    assert with_token(other).get("/api/v1/clinics/").status_code == 200  # another device stays in
    assert AuditEvent.objects.filter(action="token.revoked", actor=staff_user).exists()


def test_logout_needs_a_sign_in():
    assert_error(APIClient().post(LOGOUT_URL), 401, "not_authenticated")


def test_it_lists_my_live_tokens_without_their_keys(staff_user, doctor):
    mine = sign_in()["token"]
    token_for(staff_user)
    revoked = token_for(staff_user)
    with_token(revoked).post(LOGOUT_URL)
    token_for(doctor.user)

    response = with_token(mine).get(TOKENS_URL)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 2
    assert mine not in response.content.decode()
    assert set(rows[0]) == {"id", "prefix", "name", "created_at", "expires_at", "last_used_at", "current"}
    current = [row for row in rows if row["current"]]
    assert [row["prefix"] for row in current] == [mine[:8]]
    assert current[0]["name"] == "clinic-kiosk/1.0"


def test_it_revokes_one_of_my_tokens(staff_user):
    key, other = token_for(staff_user), token_for(staff_user)
    other_id = ApiToken.objects.get(prefix=other[:8]).pk

    response = with_token(key).delete(f"{TOKENS_URL}{other_id}/")

    assert response.status_code == 204
    assert_error(with_token(other).get("/api/v1/clinics/"), 401, "authentication_failed")
    assert with_token(key).get("/api/v1/clinics/").status_code == 200
    assert_error(with_token(key).delete(f"{TOKENS_URL}{other_id}/"), 404, "not_found")  # already gone


def test_it_hides_another_persons_tokens(staff_user, doctor, admin_user):
    theirs = token_for(doctor.user)
    their_id = ApiToken.objects.get(user=doctor.user).pk

    for me in (staff_user, admin_user):
        client = with_token(token_for(me))
        assert their_id not in [row["id"] for row in client.get(TOKENS_URL).json()["results"]]
        assert_error(client.delete(f"{TOKENS_URL}{their_id}/"), 404, "not_found")

    assert with_token(theirs).get("/api/v1/clinics/").status_code == 200


def test_revoke_all_logs_out_everywhere(staff_user, doctor):
    keys = [token_for(staff_user) for _ in range(3)]
    someone_else = token_for(doctor.user)

    response = with_token(keys[0]).post(f"{TOKENS_URL}revoke-all/")

    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    for key in keys:
        assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")
    assert with_token(someone_else).get("/api/v1/clinics/").status_code == 200


def test_a_new_password_revokes_every_token(staff_user, admin_user):
    keys = [token_for(staff_user), token_for(staff_user)]

    user_set_password(actor=admin_user, user=staff_user, password="another-pass-word-456")

    for key in keys:
        assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")
    event = AuditEvent.objects.get(action="token.revoked_all", object_id=str(staff_user.pk))
    assert event.data == {"reason": "password_changed", "count": 2}
    assert event.actor == admin_user


def test_deactivation_revokes_every_token(staff_user, admin_user):
    key = token_for(staff_user)

    user_deactivate(actor=admin_user, user=staff_user)
    staff_user.is_active = True
    staff_user.save(update_fields=["is_active"])  # even back on, the token stays dead

    error = assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")
    assert error["message"] == "Token revoked."
    event = AuditEvent.objects.get(action="token.revoked_all", object_id=str(staff_user.pk))
    assert event.data == {"reason": "deactivated", "count": 1}


def test_an_inactive_users_token_opens_nothing(staff_user):
    key = token_for(staff_user)
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert_error(with_token(key).get("/api/v1/clinics/"), 401, "authentication_failed")


def test_a_websocket_ticket_needs_a_sign_in():
    assert_error(APIClient().post("/api/v1/auth/ws-ticket/"), 401, "not_authenticated")


def test_a_websocket_ticket_is_short_lived(staff_user):
    response = with_token(token_for(staff_user)).post("/api/v1/auth/ws-ticket/")

    assert response.status_code == 201
    expires_at = dt.datetime.fromisoformat(response.json()["expires_at"])
    assert expires_at - timezone.now() <= dt.timedelta(seconds=settings.OPD_WS_TICKET_SECONDS)


def test_no_log_line_holds_a_key_or_ticket(staff_user, caplog):
    caplog.set_level(logging.DEBUG)

    key = sign_in()["token"]
    client = with_token(key)
    client.get("/api/v1/clinics/")
    ticket = client.post("/api/v1/auth/ws-ticket/").json()["ticket"]
    client.post(LOGOUT_URL)
    client.get("/api/v1/clinics/")  # 401, logged as "Unauthorized"

    assert caplog.records
    assert key not in caplog.text
    assert ticket not in caplog.text


def test_the_server_log_filter_redacts_credentials_in_query_strings():
    line = redact('GET /ws/queue/doctor/1/?ticket=abc-DEF_1&x=2 and /x?token=zzz" 401')

    assert line == 'GET /ws/queue/doctor/1/?ticket=[redacted]&x=2 and /x?token=[redacted]" 401'


def test_logout_with_a_session_ends_the_session_and_leaves_tokens_alone(staff_user):
    key = token_for(staff_user)
    client = APIClient()
    client.force_login(staff_user)

    assert client.post(LOGOUT_URL).status_code == 204

    assert_error(client.get("/api/v1/clinics/"), 401, "not_authenticated")
    assert with_token(key).get("/api/v1/clinics/").status_code == 200


def test_a_token_brings_its_person_and_organization_in_one_statement(staff_user, django_assert_num_queries):
    from opd.core.services import token_use

    key = token_for(staff_user)
    staff_user.organization.require_second_factor = False
    staff_user.organization.save(update_fields=["require_second_factor"])
    with django_assert_num_queries(1):
        token = token_use(key=key)
        # What the request goes on to read of the person (the second-factor policy, the role, the
        # organization's setting): loaded, not fetched again.
        assert (token.user.pk, token.user.username, token.user.role) == (
            staff_user.pk,
            staff_user.username,
            staff_user.role,
        )
        assert token.user.organization.require_second_factor is False
        assert token.expires_at > timezone.now()
        assert token.revoked_at is None
    # The same instances a queryset would build: saving them writes the right row.
    token.user.first_name = "Renamed"
    token.user.save(update_fields=["first_name"])
    staff_user.refresh_from_db()
    assert staff_user.first_name == "Renamed"


def test_a_revoked_token_is_refused_on_its_very_next_use(staff_user):
    body = sign_in()
    client = with_token(body["token"])
    assert client.get("/api/v1/clinics/").status_code == 200
    ApiToken.objects.filter(prefix=body["token"][:8]).update(revoked_at=timezone.now())

    assert_error(client.get("/api/v1/clinics/"), 401, "authentication_failed")
