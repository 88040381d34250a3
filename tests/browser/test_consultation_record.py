"""The consultation record in Chromium (#16 items 1 and 5): an edit never saved is what Complete
completes, and two pages editing one consultation are told of each other instead of overwriting. Served
by a real ASGI process (pages and the doctor's queue websocket), so the push reaches the second page."""

from __future__ import annotations

import json
import urllib.request

import pytest

from consultations.models import Consultation, ConsultationStatus
from scheduling.services import appointment_start, queue_call_next
from tests.browser.conftest import assert_accessible, new_page, sign_in
from tests.conftest import token_for
from tests.consultations.factories import CALM_VITALS
from tests.scheduling.queue_helpers import waiting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

LIVE = '[data-live-status][data-state="live"]'


def in_consultation(staff_user, doctor, department) -> Consultation:
    from consultations.services import consultation_open, consultation_update

    waiting(staff_user, doctor, department, minutes=5)
    called = queue_call_next(actor=doctor.user, doctor=doctor)
    started = appointment_start(actor=doctor.user, appointment=called)
    consultation = consultation_open(actor=doctor.user, appointment=started)
    return consultation_update(
        actor=doctor.user, consultation=consultation, assessment="Asthma", plan="Old plan", **CALM_VITALS
    )


def test_an_edit_never_saved_is_what_complete_completes(
    asgi_live_server, page, csp_violations, screenshot, staff_user, doctor, department
):
    consultation = in_consultation(staff_user, doctor, department)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    plan = page.locator(f"#a{consultation.appointment_id}-plan")
    plan.wait_for()

    # The plan is edited and Complete pressed at once: no Save, no pause for the autosave.
    plan.fill("Inhaler twice daily; review in two weeks")
    page.get_by_role("button", name="Complete consultation").click()
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert consultation.patient.full_name in dialog.inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    assert_accessible(page, "complete confirmation dialog")
    screenshot(page, "consultation-complete-confirm")
    dialog.get_by_role("button", name="Complete").click()
    page.get_by_role("heading", name="Notes").wait_for()  # the read-only record
    assert_accessible(page, "completed consultation")
    screenshot(page, "consultation-completed")

    request = urllib.request.Request(  # noqa: S310 (a loopback test server)
        f"{asgi_live_server.url}/api/v1/consultations/{consultation.pk}/",
        headers={"Authorization": f"Token {token_for(doctor.user)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # the test's own server
        answer = json.loads(response.read())
    assert answer["status"] == ConsultationStatus.COMPLETED
    assert answer["plan"] == "Inhaler twice daily; review in two weeks"


def test_two_pages_editing_one_consultation_are_told_not_overwritten(
    asgi_live_server, browser, page, csp_violations, screenshot, staff_user, doctor, department
):
    consultation = in_consultation(staff_user, doctor, department)
    field = f"#a{consultation.appointment_id}-plan"
    sign_in(page, asgi_live_server.url, doctor.user)
    context, second = new_page(browser, csp_violations, viewport={"width": 1280, "height": 900})
    try:
        sign_in(second, asgi_live_server.url, doctor.user)
        for tab in (page, second):
            tab.goto(f"{asgi_live_server.url}/queue/dashboard/")
            tab.wait_for_selector(LIVE)
            tab.locator(field).wait_for()

        # The first page saves; the second, with nothing typed, follows (the socket's push).
        page.locator(field).fill("Plan from the first tab")
        page.locator(field).blur()
        page.get_by_text("Saved at").wait_for()
        second.wait_for_function(
            "([selector, text]) => document.querySelector(selector)?.value === text",
            arg=[field, "Plan from the first tab"],
        )

        # Both edit; whichever saves second is told, and nothing of the first is overwritten.
        second.locator(field).fill("Plan from the second tab")
        page.locator(field).fill("Plan from the first tab, again")
        page.locator(field).blur()
        page.get_by_text("Saved at").wait_for()
        second.locator(field).blur()
        notice = second.locator("[data-record-conflict]")
        notice.wait_for(state="visible")
        assert "another tab or person" in notice.inner_text().lower() or "changed" in notice.inner_text()
        assert_accessible(second, "conflict notice")
        screenshot(second, "consultation-conflict-notice")
        assert Consultation.objects.get(pk=consultation.pk).plan == "Plan from the first tab, again"

        second.get_by_role("button", name="Load the latest version").click()
        second.wait_for_function(
            "([selector, text]) => document.querySelector(selector)?.value === text",
            arg=[field, "Plan from the first tab, again"],
        )
    finally:
        context.close()
