"""The second factor: TOTP and recovery codes, required for administrators, staff and doctors where the
organization requires it (on by default), optional for patients, on every door (pages, the admin, the API
token, the websocket), with the enrolment, reset and unlock an organization's administrator needs."""

from __future__ import annotations

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from devtools.authenticator import code_for
from opd.core.models import ApiToken, AuditEvent, RecoveryCode, RecoveryCodeDevice
from opd.core.services import (
    organization_update,
    second_factor_enrolment_begin,
    second_factor_enrolment_confirm,
    token_issue,
)
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # tests.factories.UserFactory's password
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _required(settings):
    """This deployment requires the factor (the test settings switch it off for the rest of the suite)."""
    settings.OPD_REQUIRE_SECOND_FACTOR = True


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    device = second_factor_enrolment_begin(user=user)
    codes = second_factor_enrolment_confirm(user=user, device=device, code=code_for(device).code)
    device.refresh_from_db()
    return device, codes


def next_code(device: TOTPDevice) -> str:
    """The next code the app shows (a code works once: the enrolment already spent this step's)."""
    device.refresh_from_db()
    return code_for(device).code


def sign_in(client, user) -> None:
    answer = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.content


# --- pages and the admin ---


def test_a_doctor_with_only_a_password_is_sent_to_enrol_and_reaches_nothing_else(client, doctor):
    sign_in(client, doctor.user)

    for page in ("/queue/dashboard/", "/admin/", "/portal/"):
        answer = client.get(page)
        assert answer.status_code == 302
        assert answer["Location"].startswith(reverse("second-factor") + "?next=")
    # The factor's page sends a person with no authenticator on to enrol.
    answer = client.get(reverse("second-factor"), {"next": "/queue/dashboard/"})
    assert answer.status_code == 302
    assert answer["Location"] == reverse("second-factor-enrol") + "?next=%2Fqueue%2Fdashboard%2F"
    # The API, by session, answers in the error shape.
    assert_error(client.get("/api/v1/appointments/"), 403, "second_factor_required")


def test_it_enrols_with_the_first_code_and_shows_recovery_codes_once(client, doctor):
    sign_in(client, doctor.user)
    page = client.get(reverse("second-factor-enrol"), {"next": "/queue/dashboard/"})
    assert page.status_code == 200
    assert b"<svg" in page.content  # the QR code
    device = TOTPDevice.objects.get(user=doctor.user, confirmed=False)
    assert page.context["secret"].replace(" ", "") in device.config_url

    wrong = client.post(reverse("second-factor-enrol"), {"otp_code": "000000", "next": "/queue/dashboard/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed

    device.throttle_reset()
    done = client.post(
        reverse("second-factor-enrol"), {"otp_code": next_code(device), "next": "/queue/dashboard/"}
    )
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == settings.OPD_RECOVERY_CODE_COUNT
    for code in codes:
        assert code in done.content.decode()
    # Kept only as digests.
    assert not RecoveryCode.objects.filter(digest__in=codes).exists()
    assert client.get("/queue/dashboard/").status_code == 200
    assert AuditEvent.objects.filter(
        action="auth.second_factor.enrolled", object_id=str(doctor.user.pk)
    ).exists()


def test_each_sign_in_asks_for_a_code_and_a_wrong_one_counts_as_a_failed_sign_in(client, staff_user):
    device, _ = enrol(staff_user)
    sign_in(client, staff_user)
    assert client.get("/admin/")["Location"].startswith(reverse("second-factor"))

    wrong = client.post(reverse("second-factor"), {"otp_code": "123456", "next": "/admin/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert AccessAttempt.objects.get(username=staff_user.username).failures_since_start == 1
    assert AuditEvent.objects.filter(
        action="auth.second_factor.failed", object_id=str(staff_user.pk)
    ).exists()

    device.refresh_from_db()
    device.throttle_reset()
    right = client.post(reverse("second-factor"), {"otp_code": next_code(device), "next": "/admin/"})
    assert right.status_code == 302
    assert right["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_code_cannot_be_used_twice(client, staff_user):
    device, _ = enrol(staff_user)
    sign_in(client, staff_user)
    code = next_code(device)
    assert client.post(reverse("second-factor"), {"otp_code": code}).status_code == 302

    other = type(client)()
    sign_in(other, staff_user)
    device.refresh_from_db()
    device.throttle_reset()
    again = other.post(reverse("second-factor"), {"otp_code": code})
    assert again.status_code == 200
    assert other.get("/admin/").status_code == 302


def test_a_recovery_code_signs_in_once(client, staff_user):
    _, codes = enrol(staff_user)
    sign_in(client, staff_user)
    assert client.post(reverse("second-factor"), {"otp_code": codes[0].upper()}).status_code == 302
    assert client.get("/admin/").status_code == 200

    other = type(client)()
    sign_in(other, staff_user)
    assert other.post(reverse("second-factor"), {"otp_code": codes[0]}).status_code == 200
    RecoveryCodeDevice.objects.get(user=staff_user).throttle_reset()  # the wait after a wrong code
    assert other.post(reverse("second-factor"), {"otp_code": codes[1]}).status_code == 302
    assert (
        RecoveryCode.objects.filter(device__user=staff_user, used_at__isnull=True).count() == len(codes) - 2
    )


def test_the_password_alone_cannot_replace_the_authenticator(client, staff_user):
    device, _ = enrol(staff_user)
    sign_in(client, staff_user)
    answer = client.get(reverse("second-factor-enrol"))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("second-factor"))
    assert client.post(reverse("account-recovery-codes")).status_code == 302
    assert TOTPDevice.objects.filter(user=staff_user, confirmed=True).get() == device


def test_an_organization_that_does_not_require_it_lets_staff_in_with_a_password(
    client, org, admin_user, staff_user
):
    organization_update(actor=admin_user, organization=org, require_second_factor=False)
    sign_in(client, staff_user)
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action="organization.changed", object_id=str(org.pk)).exists()


def test_the_deployment_setting_turns_the_requirement_off(client, settings, staff_user):
    settings.OPD_REQUIRE_SECOND_FACTOR = False
    sign_in(client, staff_user)
    assert client.get("/admin/").status_code == 200


def test_a_patient_may_enrol_and_is_then_asked_too(client, patient):
    sign_in(client, patient.user)
    assert client.get("/portal/appointments/").status_code == 200  # optional: not asked before enrolling
    device, _ = enrol(patient.user)
    client.logout()
    sign_in(client, patient.user)
    assert client.get("/portal/appointments/")["Location"].startswith(reverse("second-factor"))
    client.post(reverse("second-factor"), {"otp_code": next_code(device)})
    assert client.get("/portal/appointments/").status_code == 200

    # A patient may turn it off again (their organization does not require it of patients).
    off = client.post(reverse("account-second-factor-off"))
    assert off.status_code == 302
    assert not TOTPDevice.objects.filter(user=patient.user).exists()


def test_staff_cannot_turn_off_a_factor_their_organization_requires(client, staff_user):
    device, _ = enrol(staff_user)
    sign_in(client, staff_user)
    client.post(reverse("second-factor"), {"otp_code": next_code(device)})
    answer = client.post(reverse("account-second-factor-off"), follow=True)
    assert "requires a second factor" in answer.content.decode()
    assert TOTPDevice.objects.filter(user=staff_user, confirmed=True).exists()


# --- the API token ---


def token(username: str, password: str = PASSWORD, ip: str = "10.0.0.1", **extra):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def test_the_token_endpoint_refuses_staff_who_have_not_enrolled(staff_user):
    assert_error(token(staff_user.username), 403, "second_factor_enrolment_required")
    assert not ApiToken.objects.filter(user=staff_user).exists()


def test_the_token_endpoint_asks_for_the_code_and_checks_it(staff_user):
    device, _ = enrol(staff_user)
    assert_error(token(staff_user.username), 400, field="otp_code")
    assert_error(token(staff_user.username, otp_code="999999"), 400, field="otp_code")
    assert AccessAttempt.objects.get(username=staff_user.username).failures_since_start == 1
    device.refresh_from_db()
    device.throttle_reset()

    answer = token(staff_user.username, otp_code=next_code(device))
    assert answer.status_code == 200, answer.content
    assert ApiToken.objects.get(user=staff_user).second_factor
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert client.get("/api/v1/appointments/").status_code == 200


def test_a_wrong_password_never_reveals_whether_a_code_is_needed(staff_user):
    enrol(staff_user)
    assert_error(token(staff_user.username, "not-the-password"), 400, field="non_field_errors")


def test_a_token_issued_without_the_factor_stops_working_once_it_is_required(settings, staff_user):
    settings.OPD_REQUIRE_SECOND_FACTOR = False
    _, key = token_issue(user=staff_user, name="before")
    settings.OPD_REQUIRE_SECOND_FACTOR = True
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_error(client.get("/api/v1/appointments/"), 403, "second_factor_required")
    assert_error(client.post("/api/v1/auth/ws-ticket/"), 403, "second_factor_required")


def test_patients_get_tokens_with_a_password(patient):
    answer = token(patient.user.username)
    assert answer.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert client.get("/api/v1/appointments/").status_code == 200


# --- administrators: reset and unlock ---


def test_an_administrator_resets_a_lost_factor_and_the_persons_tokens_end(client, admin_user, staff_user):
    enrol(staff_user)
    token_issue(user=staff_user, name="phone", second_factor=True)
    admin_device, _ = enrol(admin_user)
    sign_in(client, admin_user)
    client.post(reverse("second-factor"), {"otp_code": next_code(admin_device)})

    answer = client.post(
        reverse("admin:core_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [staff_user.pk]},
        follow=True,
    )
    assert "1 second factor(s) reset" in answer.content.decode()
    assert not TOTPDevice.objects.filter(user=staff_user).exists()
    assert ApiToken.objects.get(user=staff_user).revoked_at is not None
    assert AuditEvent.objects.filter(
        action="auth.second_factor.reset", actor=admin_user, object_id=str(staff_user.pk)
    ).exists()


def test_an_administrator_cannot_reset_another_organizations_people(client, admin_user, other_org_user):
    enrol(other_org_user)
    admin_device, _ = enrol(admin_user)
    sign_in(client, admin_user)
    client.post(reverse("second-factor"), {"otp_code": next_code(admin_device)})
    client.post(
        reverse("admin:core_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [other_org_user.pk]},
    )
    assert TOTPDevice.objects.filter(user=other_org_user, confirmed=True).exists()


def test_an_administrator_unlocks_a_locked_out_colleague(client, settings, admin_user, staff_user):
    settings.OPD_REQUIRE_SECOND_FACTOR = False
    # Failures from several addresses: the account locks, no address does.
    for n in range(settings.AXES_FAILURE_LIMIT):
        token(staff_user.username, f"wrong-{n}", ip=f"10.0.1.{n}")
    assert_error(token(staff_user.username, ip="10.0.2.1"), 429, "locked_out")

    sign_in(client, admin_user)
    answer = client.post(
        reverse("admin:core_user_changelist"),
        {"action": "unlock_sign_in", "_selected_action": [staff_user.pk]},
        follow=True,
    )
    assert "Sign-in unlocked" in answer.content.decode()
    assert token(staff_user.username, ip="10.0.2.1").status_code == 200
    assert AuditEvent.objects.filter(action="user.signin_unlocked", object_id=str(staff_user.pk)).exists()


# --- the demo ---


def test_otp_code_prints_a_code_that_signs_in(capsys, staff_user):
    device, _ = enrol(staff_user)
    call_command("otp_code", staff_user.username)
    code = capsys.readouterr().out.split()[0]
    device.refresh_from_db()
    device.throttle_reset()
    assert token(staff_user.username, otp_code=code).status_code == 200


def test_codes_follow_the_clock(staff_user):
    device, _ = enrol(staff_user)
    with time_machine.travel(device.t0 + (device.last_t + 40) * device.step, tick=False):
        code = code_for(device)
        assert code.current
        assert token(staff_user.username, otp_code=code.code).status_code == 200


def test_otp_code_gives_the_next_code_when_this_steps_was_used(capsys, staff_user):
    device, _ = enrol(staff_user)  # the enrolment spent this step's code
    with time_machine.travel(device.t0 + device.last_t * device.step + 1, tick=False):
        call_command("otp_code", staff_user.username)
        code = capsys.readouterr().out.split()[0]
        device.refresh_from_db()
        assert token(staff_user.username, otp_code=code).status_code == 200
