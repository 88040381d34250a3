"""Every main page under the Content-Security-Policy, in Debian's Chromium: nothing is blocked.

The `page` fixture (tests/browser/conftest.py) collects every violation Chromium reports and fails the
test that left any; this tour makes sure each main page, with its scripts and styles, is looked at.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.consultations.factories import checked_in_appointment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def visit(page, url: str, *, ready: str = "main, #swagger-ui") -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")


def test_no_page_breaks_the_content_security_policy(
    live_server, page, login, csp_violations, org, clinic, department, doctor, staff_user, patient, superuser
):
    base = live_server.url
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)

    for url in ("/", "/accounts/login/", "/portal/signup/", "/accounts/password_reset/"):
        visit(page, base + url)

    login(page, patient.user)
    for url in ("/portal/", "/portal/find/", "/portal/appointments/", "/portal/record/"):
        visit(page, base + url)
    visit(page, base + f"/portal/appointments/{appointment.pk}/")
    page.context.clear_cookies()

    login(page, doctor.user)
    visit(page, base + "/queue/dashboard/")
    visit(page, base + reverse("consultations:panel", args=[appointment.pk]))
    page.get_by_role("button", name="Open consultation").click()
    page.get_by_role("button", name="Save vitals").wait_for()  # the htmx swap, under the policy
    visit(page, base + "/analytics/", ready="main canvas, main table, main form")
    page.context.clear_cookies()

    login(page, staff_user)
    visit(page, base + "/queue/waiting-rooms/")
    visit(page, base + f"/queue/clinics/{clinic.pk}/display/")
    page.context.clear_cookies()

    login(page, superuser, password="pass-word-123")
    for url in ("/admin/", "/admin/scheduling/appointment/", "/admin/core/user/add/"):
        visit(page, base + url, ready="#content")
    visit(page, base + f"/admin/scheduling/appointment/{appointment.pk}/change/", ready="#content")
    visit(page, base + "/api/docs/", ready="#swagger-ui .information-container")

    assert not csp_violations, "\n".join(csp_violations)
