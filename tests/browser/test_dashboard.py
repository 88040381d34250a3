"""The doctor's dashboard and the waiting-room display, live, in Debian's Chromium.

pytest-django's live_server speaks WSGI only, so these pages are served by a real uvicorn process (ASGI,
websockets included) on the test database and the test's Redis channel layer; the change that should
appear live is made through that server's API, as reception's own program would.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from patients.models import Patient
from scheduling.services import appointment_start, queue_call_next
from tests.browser.conftest import assert_accessible, new_page, sign_in
from tests.conftest import token_for
from tests.consultations.factories import complete_visit
from tests.factories import DoctorFactory
from tests.scheduling.asgi_server import post
from tests.scheduling.queue_helpers import booked, waiting

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

LIVE = '[data-live-status][data-state="live"]'


def test_the_dashboard_shows_a_check_in_made_elsewhere_without_reloading(
    asgi_live_server, page, browser, csp_violations, screenshot, org, staff_user, doctor, department, clinic
):
    doctor.room = "Room 3"
    doctor.save(update_fields=["room"])
    now = timezone.now()
    seen = waiting(staff_user, doctor, department, minutes=3)
    seen = queue_call_next(actor=doctor.user, doctor=doctor, now=now - dt.timedelta(minutes=20))
    seen = appointment_start(actor=doctor.user, appointment=seen, now=now - dt.timedelta(minutes=19))
    complete_visit(actor=doctor.user, appointment=seen, now=now - dt.timedelta(minutes=8))
    # A colleague down the corridor, for the waiting room.
    colleague = DoctorFactory(user__organization=org, departments=[department], room="Room 4")
    for minutes in (4, 12, 24):
        waiting(staff_user, colleague, department, minutes=minutes)
    appointment_start(
        actor=colleague.user, appointment=queue_call_next(actor=colleague.user, doctor=colleague)
    )
    waiting(staff_user, doctor, department, minutes=5)
    first = waiting(staff_user, doctor, department, minutes=10, priority="NEWS2 medium (5)")  # seen first
    waiting(staff_user, doctor, department, minutes=20)
    arriving = booked(staff_user, doctor, department, minutes=35)
    booked(staff_user, doctor, department, minutes=50)
    reception = token_for(staff_user)
    # Names no doctor shares (Faker's could), so "no patient name on the waiting room" means just that.
    for appointment, last_name in ((first, "Quennell"), (arriving, "Marplewood")):
        Patient.objects.filter(pk=appointment.patient_id).update(last_name=last_name)
        appointment.patient.refresh_from_db()

    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    page.wait_for_selector(LIVE)

    # The doctor calls the first patient and starts the consultation (plain forms).
    page.get_by_role("button", name="Call next patient").click()
    page.get_by_role("button", name="Start consultation").click()
    # Each form reloads the page: wait for the new one (and its socket) before going on.
    page.get_by_role("button", name="Continue the consultation").wait_for()
    page.wait_for_selector(LIVE)
    assert page.locator("#queue-current .now-who h2").inner_text() == first.patient.full_name
    assert page.locator(f"#appointment-{arriving.pk}").count() == 0

    # Reception checks a patient in from elsewhere; the page must not reload to show it.
    page.evaluate("window.stillTheSamePage = true")
    status, body = post(
        f"{asgi_live_server.url}/api/v1/appointments/{arriving.pk}/check-in/", token=reception
    )
    assert status == 200, body
    row = page.locator(f"#appointment-{arriving.pk}")
    row.wait_for(state="visible")
    assert json.loads(body)["token_label"] in row.inner_text()
    assert arriving.patient.full_name in row.inner_text()
    assert page.evaluate("window.stillTheSamePage") is True
    # The patient with the doctor was not re-fetched: only the line changed.
    assert page.locator("#queue-current .now-who h2").inner_text() == first.patient.full_name
    # The picture shows the new row's highlight: wait until its animation runs.
    page.wait_for_function(
        "id => document.getElementById(id).getAnimations().some(a => a.playState === 'running')",
        arg=f"appointment-{arriving.pk}",
    )
    # With the consultation panel htmx loaded into it: checked as the doctor sees it.
    page.locator("#queue-current section.consultation-panel").wait_for()
    assert_accessible(page, "dashboard")
    screenshot(page, "dashboard")

    # The waiting room, on a big screen: tokens and rooms, no names, and it follows the doctor's calls.
    _, display = new_page(browser, csp_violations, viewport={"width": 1600, "height": 900})
    sign_in(display, asgi_live_server.url, staff_user)
    display.goto(f"{asgi_live_server.url}/queue/clinics/{clinic.pk}/display/")
    display.wait_for_selector(LIVE)
    board = display.locator("#display-board").inner_text()
    assert "Room 3" in board
    assert "Room 4" in board
    assert first.patient.last_name not in board
    assert "Please wait" in board

    # The visit is completed in its record, in the card (the page stays; the queue follows live).
    card = page.locator("#queue-current")
    card.get_by_role("button", name="Open consultation").click()
    card.locator(f"#a{first.pk}-vitals_not_taken_reason").fill("Seen by video")
    card.locator(f"#a{first.pk}-assessment").fill("Well")
    card.locator(f"#a{first.pk}-plan").fill("No follow-up needed")
    card.get_by_role("button", name="Complete consultation").click()
    page.locator("dialog.confirm-dialog").get_by_role("button", name="Complete").click()
    page.get_by_role("button", name="Call next patient").click()
    # The top card says it (the panel it loads shows the same words in its status badge).
    page.locator("#queue-current-title").get_by_text("Called to the room").wait_for()
    called = page.locator("#queue-current .token-lg").inner_text()
    display.locator(".calling.is-latest .calling-token", has_text=called).wait_for(state="visible")
    for appointment in (first, arriving):
        assert appointment.patient.last_name not in display.locator("body").inner_text()
    assert_accessible(display, "waiting-room")
    screenshot(display, "waiting-room")
    display.context.close()


def test_the_dashboard_reconnects_after_the_connection_drops(
    asgi_live_server, page, staff_user, doctor, department
):
    arriving = booked(staff_user, doctor, department, minutes=30)
    reception = token_for(staff_user)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")
    page.wait_for_selector(LIVE)

    # The network goes away for a moment: the page says so, then comes back by itself.
    page.context.set_offline(True)
    page.evaluate("window.dispatchEvent(new Event('offline'))")
    page.wait_for_selector('[data-live-status][data-state="offline"]', timeout=15_000)
    status, body = post(
        f"{asgi_live_server.url}/api/v1/appointments/{arriving.pk}/check-in/", token=reception
    )
    assert status == 200, body
    page.context.set_offline(False)

    # Reconnected, the snapshot's newer version makes the page catch up with what it missed.
    page.wait_for_selector(LIVE, timeout=20_000)
    page.locator(f"#appointment-{arriving.pk}").wait_for(state="visible")
