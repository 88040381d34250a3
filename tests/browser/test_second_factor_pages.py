"""A doctor whose organization requires a second factor enrols an authenticator in the browser, keeps the
recovery codes, signs in again with a code, and finds the security page: each page accessible, with no
Content-Security-Policy violation (the browser fixtures fail on any)."""

from __future__ import annotations

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def app_code(secret: str, *, step_offset: int = 0) -> str:
    """What an authenticator app shows for the key typed into it."""
    from base64 import b32decode

    totp = TOTP(b32decode(secret.replace(" ", "")))
    totp.time = totp.time + step_offset * 30
    return f"{totp.token():06d}"


def test_a_doctor_enrols_and_signs_in_with_a_code(live_server, page, login, doctor, settings, screenshot):
    settings.OPD_REQUIRE_SECOND_FACTOR = True
    login(page, doctor.user)
    assert "/accounts/second-factor/enrol/" in page.url
    expect(page.get_by_role("img", name="QR code to scan with your authenticator app")).to_be_visible()
    assert_accessible(page, "second factor enrolment")
    screenshot(page, "second-factor-enrol")

    secret = page.locator(".otp-secret").inner_text()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    assert_accessible(page, "second factor enrolment, wrong code")

    TOTPDevice.objects.filter(user=doctor.user).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    page.get_by_label("Code").fill(app_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.locator(".recovery-codes li").count() == 10
    assert_accessible(page, "recovery codes")
    page.get_by_role("button", name="I have saved them: continue").click()
    page.wait_for_load_state("networkidle")
    assert "/queue/dashboard/" in page.url

    # Next sign-in: the password, then the code (the next step's: the enrolment spent this one).
    page.get_by_role("button", name=f"Log out {doctor.user.username}").click()
    login(page, doctor.user)
    assert "/accounts/second-factor/" in page.url
    assert_accessible(page, "second factor")
    device = TOTPDevice.objects.get(user=doctor.user)
    code = app_code(secret) if TOTP(device.bin_key).t() > device.last_t else app_code(secret, step_offset=1)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("networkidle")
    assert "/queue/dashboard/" in page.url

    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Sign-in security")).to_be_visible()
    assert_accessible(page, "security page")
    screenshot(page, "security")
