"""Every main page under the Content-Security-Policy, in Debian's Chromium: nothing is blocked, and
axe-core finds no accessibility violation.

The `page` fixture (tests/browser/conftest.py) collects every violation Chromium reports and fails the
test that left any; this tour makes sure each main page, with its scripts and styles, is looked at, and
runs axe-core on each (all pages' findings reported together).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import axe_violations, format_violations
from tests.consultations.factories import checked_in_appointment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


# Rules switched off on third-party pages only, whose markup and styles we do not write; our own pages
# get none. Each is what axe-core 4.14 reported there, with the reason it is not ours to fix:
ADMIN_RULES_OFF = (
    # Django admin 5.2's change list search box is named by its title attribute only (#searchbar).
    "label-title-only",
    # Django admin's breadcrumbs: white links on light-blue text, told apart by colour alone.
    "link-in-text-block",
    # Django admin's tabular inlines (the user form's) start with an empty <th class="original">.
    "empty-table-header",
)
SWAGGER_RULES_OFF = (
    # Swagger UI (drf-spectacular's page at /api/docs/) renders all of these from its own script:
    "color-contrast",  # its method badges and version stamp: white on light green/blue (2.0-3.8:1)
    "heading-order",  # its operation groups jump from h2 to h4
    "nested-interactive",  # each operation's summary is a button holding links and buttons
    "region",  # its information block sits outside any landmark
    "html-has-lang",  # drf-spectacular's template writes <html> outside any block we can override
)


def visit(page, url: str, *, ready: str = "main, #swagger-ui", findings: list[str], rules_off=()) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.locator(ready).first.wait_for()
    page.wait_for_load_state("networkidle")
    check(page, url, findings, rules_off)


def check(page, where: str, findings: list[str], rules_off=()) -> None:
    violations = axe_violations(page, disabled_rules=tuple(rules_off), preload="/admin/" not in where)
    if violations:
        findings.append(f"{where}:\n{format_violations(violations)}")


def test_no_page_breaks_the_content_security_policy_or_axe(
    live_server, page, login, csp_violations, org, clinic, department, doctor, staff_user, patient, superuser
):
    base = live_server.url
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    findings: list[str] = []

    # Sign-up opens from a clinic's own link; /portal/signup/ alone answers 404 (and is checked too).
    signup = reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code])
    for url in ("/", "/accounts/login/", signup, "/accounts/password_reset/"):
        visit(page, base + url, findings=findings)
    page.goto(base + "/portal/signup/")
    check(page, "/portal/signup/ (no clinic named: 404)", findings)

    login(page, patient.user)
    for url in (
        "/portal/",
        "/portal/find/",
        "/portal/appointments/",
        "/portal/record/",
        "/portal/record/accesses/",
        "/portal/profile/",
    ):
        visit(page, base + url, findings=findings)
    visit(page, base + f"/portal/appointments/{appointment.pk}/", findings=findings)
    page.context.clear_cookies()

    login(page, doctor.user)
    visit(page, base + "/queue/dashboard/", findings=findings)
    visit(page, base + reverse("consultations:panel", args=[appointment.pk]), findings=findings)
    page.get_by_role("button", name="Open consultation").click()
    page.get_by_role("button", name="Save draft").wait_for()  # the htmx swap, under the policy
    check(page, "consultation panel, opened", findings)
    visit(page, base + "/analytics/", ready="main canvas, main table, main form", findings=findings)
    page.context.clear_cookies()

    login(page, staff_user)
    visit(page, base + "/queue/waiting-rooms/", findings=findings)
    visit(page, base + f"/queue/clinics/{clinic.pk}/display/", findings=findings)
    page.context.clear_cookies()

    login(page, superuser, password="pass-word-123")
    admin_pages = (
        "/admin/",
        "/admin/scheduling/appointment/",
        "/admin/core/user/add/",
        "/admin/core/flaggedaccess/",
        "/admin/core/accessreview/add/",
        f"/admin/scheduling/appointment/{appointment.pk}/change/",
        "/admin/scheduling/appointment/today/",
        f"/admin/scheduling/appointment/{appointment.pk}/slip/",
        f"/admin/patients/patient/{patient.pk}/change/",
    )
    for url in admin_pages:
        visit(page, base + url, ready="#content", findings=findings, rules_off=ADMIN_RULES_OFF)
    visit(
        page,
        base + "/api/docs/",
        ready="#swagger-ui .information-container",
        findings=findings,
        rules_off=SWAGGER_RULES_OFF,
    )

    assert not csp_violations, "\n".join(csp_violations)
    assert not findings, "axe-core found accessibility violations:\n" + "\n".join(findings)
