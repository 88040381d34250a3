"""The consultation panel in Debian's Chromium: htmx posts (with the CSRF token) swap the fragment in place.

Playwright's sync API allows one instance per thread, and tests/browser keeps a session-wide one in the
main thread; this test drives its own browser from a thread of its own so the two never meet.
"""

from __future__ import annotations

import threading

import pytest
from django.urls import reverse

from consultations.models import Consultation
from tests.browser.conftest import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    axe_violations,
    format_violations,
    new_page,
)

from .factories import checked_in_appointment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def in_own_thread(work) -> None:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the browser scenario did not finish"
    if failure:
        raise failure[0]


def test_a_doctor_opens_records_vitals_and_sees_the_news2_without_reloading(
    live_server, doctor, department, patient
):
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    panel = f"{live_server.url}{reverse('consultations:panel', args=[appointment.pk])}"
    prefix = f"#a{appointment.pk}-"
    seen: dict = {}
    csp_violations: list[str] = []
    accessibility: list[str] = []  # axe-core's findings, reported from the test's own thread

    def check(page, state: str) -> None:
        if violations := axe_violations(page):
            accessibility.append(f"{state}:\n{format_violations(violations)}")

    def scenario() -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            _, page = new_page(browser, csp_violations, viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/accounts/login/?next={panel}")
            page.get_by_label("Username").fill(doctor.user.get_username())
            page.get_by_label("Password").fill("pass-word-123")
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("button", name="Open consultation").wait_for()
            page.evaluate("window.__same_page = true")  # gone if the browser navigated instead of swapping

            page.get_by_role("button", name="Open consultation").click()
            page.get_by_role("button", name="Save draft").wait_for()
            check(page, "panel opened")
            for field, value in {
                "respiratory_rate": "22",
                "spo2": "95",
                "systolic_bp": "100",
                "diastolic_bp": "60",
                "pulse": "95",
                "temperature": "38.5",
            }.items():
                page.fill(f"{prefix}{field}", value)
            page.select_option(f"{prefix}on_supplemental_oxygen", "true")
            page.select_option(f"{prefix}consciousness", "A")
            page.get_by_role("button", name="Save draft").click()
            page.locator(".news2 .badge").wait_for()
            seen["band"] = page.locator(".news2 .badge").inner_text()
            seen["total"] = page.locator(".news2-total").inner_text()
            seen["same_page"] = page.evaluate("window.__same_page")
            check(page, "NEWS2 shown")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "consultation-panel-news2.png"), full_page=True)

            page.fill(f"{prefix}pulse", "400")
            page.get_by_role("button", name="Save draft").click()
            page.locator(f"{prefix}pulse_error").wait_for()
            seen["error"] = page.locator(f"{prefix}pulse_error").inner_text()
            check(page, "vitals refused, error beside the field")
            browser.close()

    in_own_thread(scenario)

    assert seen["band"] == "High"
    assert seen["total"] == "9"
    assert seen["same_page"] is True
    assert "between 20 and 300" in seen["error"]
    assert Consultation.objects.get(appointment=appointment).pulse == 95
    assert not csp_violations, "\n".join(csp_violations)
    assert not accessibility, "axe-core found accessibility violations:\n" + "\n".join(accessibility)


def test_a_doctor_sees_the_allergies_on_top_and_overrides_a_conflict_with_a_reason(
    live_server, doctor, department, patient
):
    from consultations.models import Prescription
    from opd.core.models import AuditEvent
    from patients.services import allergy_record

    from .factories import open_consultation

    allergy_record(
        actor=doctor.user,
        patient=patient,
        substance="Penicillin",
        category="drug",
        severity="life_threatening",
        reaction="Anaphylaxis",
    )
    consultation = open_consultation(doctor=doctor, department=department, patient=patient)
    panel = f"{live_server.url}{reverse('consultations:panel', args=[consultation.appointment_id])}"
    prefix = f"#a{consultation.appointment_id}-"
    seen: dict = {}
    csp_violations: list[str] = []
    accessibility: list[str] = []

    def check(page, state: str) -> None:
        if violations := axe_violations(page):
            accessibility.append(f"{state}:\n{format_violations(violations)}")

    def scenario() -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            _, page = new_page(browser, csp_violations, viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/accounts/login/?next={panel}")
            page.get_by_label("Username").fill(doctor.user.get_username())
            page.get_by_label("Password").fill("pass-word-123")
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("button", name="Add to prescription").wait_for()
            seen["allergies"] = page.locator(".patient-allergies").inner_text()
            check(page, "panel with allergies on top")

            for field, value in {
                "line-medication": "Amoxicillin",
                "line-dose": "1 capsule",
                "line-frequency": "three times a day",
                "line-quantity": "21",
            }.items():
                page.fill(f"{prefix}{field}", value)
            page.get_by_role("button", name="Add to prescription").click()
            page.locator(".message-error").wait_for()
            seen["conflict"] = page.locator(".message-error").inner_text()
            check(page, "allergy conflict shown")
            page.fill(
                f"{prefix}line-allergy_override_reason", "Tolerated amoxicillin in 2024 under observation."
            )
            page.get_by_role("button", name="Add to prescription").click()
            page.locator(".prescription-lines").wait_for()
            seen["lines"] = page.locator(".prescription-lines").inner_text()
            check(page, "line added after the override")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "consultation-panel-allergy-override.png"), full_page=True)
            browser.close()

    in_own_thread(scenario)

    assert "Penicillin" in seen["allergies"]
    assert "Anaphylaxis" in seen["allergies"]
    assert "Amoxicillin matches the recorded allergy to Penicillin (penicillins)" in seen["conflict"]
    assert "Amoxicillin" in seen["lines"]
    assert Prescription.objects.get().items.get().medication == "Amoxicillin"
    assert AuditEvent.objects.filter(action="prescription.allergy_override").exists()
    assert not csp_violations, "\n".join(csp_violations)
    assert not accessibility, "axe-core found accessibility violations:\n" + "\n".join(accessibility)
