"""Nurse triage in Chromium (#16 items 3, 4 and 6): a nurse records high vitals on the triage page while
the doctor's dashboard is open in another browser; the patient moves to the front there at once, with the
NEWS2 banner and a pushed alert (role=alert, a beep, a mute toggle); the consultation then opens with the
nurse's vitals and the emergency banner. Served by a real ASGI process on the Redis channel layer."""

from __future__ import annotations

import pytest

from consultations.models import TriageObservation
from tests.browser.conftest import assert_accessible, new_page, sign_in
from tests.scheduling.queue_helpers import waiting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

LIVE = '[data-live-status][data-state="live"]'

# NEWS2 11: respiration 26 (3), SpO2 90 (3), air (0), systolic 95 (2), pulse 125 (2), alert (0), 38.5 °C (1).
HIGH = {
    "Respiratory rate": "26",
    "SpO2": "90",
    "Systolic BP": "95",
    "Diastolic BP": "60",
    "Pulse": "125",
    "Temperature": "38.5",
}


def test_a_nurses_high_vitals_move_the_patient_up_on_the_doctors_open_dashboard(
    asgi_live_server, browser, page, csp_violations, screenshot, nurse, staff_user, doctor, department, clinic
):
    first = waiting(staff_user, doctor, department, minutes=5)
    second = waiting(staff_user, doctor, department, minutes=15)
    base = asgi_live_server.url

    # The doctor's dashboard, open and live: the earlier booking first.
    sign_in(page, base, doctor.user)
    # What the dashboard's socket and console saw, to name the cause if the alert never shows.
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.on("console", lambda message: frames.append("console: " + message.text))
    page.goto(f"{base}/queue/dashboard/")
    page.wait_for_selector(LIVE)
    assert page.locator(f"#appointment-{first.pk} td").first.inner_text() == "1"
    assert page.locator(f"#appointment-{second.pk} td").first.inner_text() == "2"

    # The nurse, in another browser, reaches triage from the waiting rooms.
    context, nurse_page = new_page(browser, csp_violations, viewport={"width": 1280, "height": 1000})
    try:
        sign_in(nurse_page, base, nurse)
        nurse_page.goto(f"{base}/queue/waiting-rooms/")
        nurse_page.get_by_role("button", name="Triage").click()
        nurse_page.get_by_role("heading", name="Triage").wait_for()
        nurse_page.wait_for_selector(LIVE)
        assert_accessible(nurse_page, "triage page")

        # Keyboard: the form opens from its summary with Enter.
        form = nurse_page.locator(f"#triage-form-{second.pk}")
        form.locator("summary").focus()
        nurse_page.keyboard.press("Enter")
        for label, value in HIGH.items():
            form.get_by_label(label, exact=True).fill(value)
        form.get_by_label("On supplemental oxygen").select_option(label="No")
        form.get_by_label("Level of consciousness (ACVPU)").select_option(label="Alert")
        assert_accessible(nurse_page, "triage page with a vitals form open")
        screenshot(nurse_page, "triage-form")
        form.get_by_role("button", name="Save vitals").click()
        nurse_page.get_by_text(f"Vitals recorded for token {second.token_label}: NEWS2 11").wait_for()
        row = nurse_page.locator(f"#triage-{second.pk}")
        assert "NEWS2 11 · Emergency response" in row.inner_text()
        screenshot(nurse_page, "triage-recorded")
    finally:
        context.close()

    # On the doctor's dashboard, without a reload: first in line, the banner, the alert.
    moved = page.locator(f"#appointment-{second.pk}")
    page.wait_for_function(
        "id => document.querySelector('#appointment-' + id + ' td')?.textContent.trim() === '1'",
        arg=second.pk,
    )
    assert page.locator(f"#appointment-{first.pk} td").first.inner_text() == "2"
    assert "NEWS2 11 · Emergency response" in moved.inner_text()
    assert "Priority: NEWS2 high (11)" in moved.inner_text()
    alert = page.locator('.queue-alert[role="alert"]')
    try:
        alert.wait_for()
    except Exception:
        pytest.fail("no alert on the dashboard; the socket and console saw:\n" + "\n".join(frames[-12:]))
    assert "NEWS2 11, emergency response" in alert.inner_text()
    assert "call the emergency team" in alert.inner_text()
    assert second.patient.full_name in alert.inner_text()
    assert int(page.locator("[data-queue-live]").get_attribute("data-beeps") or "0") >= 1
    assert_accessible(page, "dashboard with a NEWS2 alert")
    screenshot(page, "triage-dashboard-alert")

    # The sound can be muted on this device; the choice is kept.
    mute = page.locator("[data-alert-mute]")
    mute.click()
    assert mute.get_attribute("aria-pressed") == "true"
    assert mute.inner_text() == "Alert sound off"
    page.reload()
    assert page.locator("[data-alert-mute]").get_attribute("aria-pressed") == "true"
    assert TriageObservation.objects.get().recorded_by == nurse


def test_the_consultation_opens_with_the_nurses_vitals_and_the_news2_banner(
    asgi_live_server, page, csp_violations, screenshot, nurse, staff_user, doctor, department
):
    from consultations.services import triage_record
    from tests.consultations.test_triage import HIGH_VITALS

    appt = waiting(staff_user, doctor, department, minutes=5)
    triage_record(actor=nurse, appointment=appt, **HIGH_VITALS)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    page.wait_for_selector(LIVE)
    page.get_by_role("button", name="Call next patient").click()
    page.get_by_role("button", name="Start consultation").click()
    page.get_by_role("button", name="Open consultation").click()

    panel = page.locator(f"#consultation-panel-{appt.pk}")
    panel.get_by_text("Vitals taken at triage by").wait_for()
    banner = panel.locator('.news2-response-emergency[role="alert"]')
    assert "Emergency response" in banner.inner_text()
    assert "call the emergency team" in banner.inner_text()
    assert panel.get_by_label("Pulse", exact=True).input_value() == "125"
    top = page.locator("#queue-current .news2-response-emergency").first
    assert "NEWS2 11" in top.inner_text()
    assert_accessible(page, "consultation panel with the NEWS2 banner")
    screenshot(page, "news2-banner-panel")
