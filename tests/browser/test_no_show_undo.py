"""No-show on the doctor's dashboard, in Chromium: it asks first, offers Undo, and Undo puts the patient
back in the waiting line (#16 item 5). Served by a real ASGI process like tests/browser/test_dashboard.py,
so the page is live while it happens."""

from __future__ import annotations

import pytest

from scheduling.models import Appointment, AppointmentStatus
from tests.browser.conftest import assert_accessible, sign_in
from tests.scheduling.queue_helpers import waiting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

LIVE = '[data-live-status][data-state="live"]'


def test_it_asks_before_a_no_show_and_undoes_it(
    asgi_live_server, page, csp_violations, screenshot, staff_user, doctor, department
):
    first = waiting(staff_user, doctor, department, minutes=5)
    second = waiting(staff_user, doctor, department, minutes=15)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    page.wait_for_selector(LIVE)
    page.get_by_role("button", name="Call next patient").click()
    page.get_by_role("button", name="Start consultation").wait_for()
    page.wait_for_selector(LIVE)

    # No-show asks in a dialog; Cancel (where the focus starts) leaves the patient alone.
    page.locator("#queue-current").get_by_role("button", name="No-show").click()
    dialog = page.locator("dialog.confirm-dialog")
    dialog.wait_for(state="visible")
    assert first.patient.full_name in dialog.inner_text()
    assert "undo it for 5 minutes" in dialog.inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    assert_accessible(page, "no-show confirmation dialog")
    screenshot(page, "no-show-confirm")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert Appointment.objects.get(pk=first.pk).status == AppointmentStatus.CHECKED_IN

    # Confirmed, the patient is a no-show and the page offers Undo.
    page.locator("#queue-current").get_by_role("button", name="No-show").click()
    dialog.get_by_role("button", name="No-show").click()
    page.get_by_text(f"Token {first.token_label} marked as no-show").first.wait_for()
    undo = page.locator(".undo-bar").get_by_role("button", name="Undo")
    undo.wait_for()
    assert Appointment.objects.get(pk=first.pk).status == AppointmentStatus.NO_SHOW
    assert page.locator(f"#appointment-{first.pk}").count() == 0
    page.wait_for_selector(LIVE)
    assert_accessible(page, "dashboard with the undo offer")
    screenshot(page, "no-show-undo-offer")

    undo.click()
    page.get_by_text("no-show undone, back in the queue").wait_for()
    row = page.locator(f"#appointment-{first.pk}")
    row.wait_for(state="visible")
    assert first.patient.full_name in row.inner_text()
    assert row.locator("td").first.inner_text() == "1"  # back in front of the line
    assert page.locator(f"#appointment-{second.pk} td").first.inner_text() == "2"
    assert page.locator(".undo-bar").count() == 0
    assert Appointment.objects.get(pk=first.pk).status == AppointmentStatus.CHECKED_IN


def test_the_confirmation_page_without_the_script_is_accessible(
    asgi_live_server, page, csp_violations, screenshot, staff_user, doctor, department
):
    appt = waiting(staff_user, doctor, department, minutes=5)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    # What a browser without JavaScript does: the form is sent as it is, without confirmed=1.
    page.locator(f"#appointment-{appt.pk} form[data-confirm]", has_text="Skip").evaluate("f => f.submit()")
    page.get_by_role("heading", name=f"Skip token {appt.token_label}").wait_for()
    assert_accessible(page, "skip confirmation page")
    screenshot(page, "skip-confirm-page")

    page.get_by_role("button", name="Cancel, go back").click()
    page.wait_for_selector(LIVE)
    assert Appointment.objects.get(pk=appt.pk).queue_key == appt.queue_key
