"""Messages that help, in Debian's Chromium: the manage-booking link (cancel through it, no sign-in), the
live portal inbox, and the analytics page administrators land on, on a 360 px phone.
Screenshots go to test-artifacts/messages-*.png."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.urls import reverse
from playwright.sync_api import expect

from notifications.links import manage_token
from notifications.models import Channel, Kind, Status
from notifications.services import new_notification, notification_enqueue
from scheduling.models import AppointmentStatus
from scheduling.services import appointment_book
from tests.browser.conftest import assert_accessible, sign_in
from tests.conftest import future_slot
from tests.factories import PatientFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

FITS_360 = "document.scrollingElement.scrollWidth <= 360"


def test_a_patient_without_an_account_cancels_through_the_manage_link(
    live_server, page, narrow_page, screenshot, org, clinic, doctor, department, staff_user
):
    clinic.phone = "+44 20 7946 0000"
    clinic.save()
    patient = PatientFactory(organization=org, first_name="Mary", last_name="Seacole")
    appointment = appointment_book(
        actor=staff_user, patient=patient, slot=future_slot(doctor, department, days=3)
    )
    link = live_server.url + reverse("manage:page", args=[manage_token(appointment)])

    narrow_page.goto(link)
    expect(narrow_page.get_by_role("heading", name="Your appointment")).to_be_visible()
    assert narrow_page.evaluate(FITS_360)
    assert_accessible(narrow_page, "manage link on a phone")
    screenshot(narrow_page, "messages-manage-link-360")

    page.goto(link)
    expect(page.get_by_text(doctor.display_name)).to_be_visible()
    assert_accessible(page, "manage link")
    screenshot(page, "messages-manage-link")
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.wait_for_url("**/cancel/")
    assert_accessible(page, "manage link: cancel")
    page.get_by_label("Reason").fill("Feeling better")
    page.get_by_role("button", name="Cancel appointment").click()
    page.wait_for_url(link)
    expect(page.get_by_text("is cancelled")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    assert_accessible(page, "manage link: cancelled")
    screenshot(page, "messages-manage-link-cancelled")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancellation_reason == "Feeling better"

    page.goto(link[:-3] + ("AAA/" if not link.endswith("AAA/") else "BBB/"))
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()


def test_the_inbox_shows_a_message_delivered_while_it_is_open(asgi_live_server, page, screenshot, patient):
    sign_in(page, asgi_live_server.url, patient.user)
    page.goto(f"{asgi_live_server.url}/portal/messages/")
    expect(page.get_by_text("No messages yet")).to_be_visible()
    badge = page.locator("[data-unread-badge]")
    expect(badge).to_be_hidden()
    assert_accessible(page, "empty inbox")
    # The page's socket is open once the server has the connection in the user's group; give it a moment.
    page.wait_for_timeout(1000)
    page.evaluate("window.stillTheSamePage = true")

    def deliver():
        # Written and sent as a worker would, in a thread of its own: Playwright's event loop runs in
        # this one, and the in-app backend's group_send (async_to_sync) refuses to run beside it.
        try:
            row, _ = notification_enqueue(
                row=new_notification(
                    organization_id=patient.organization_id,
                    patient_id=patient.pk,
                    user_id=patient.user_id,
                    channel=Channel.IN_APP,
                    kind=Kind.BOOKING_CONFIRMATION,
                    subject="Appointment booked",
                    body="Wed 09 Dec 2026, 10:00 Europe/London with Dr House at Riverside Central.",
                    dedup_key="browser-inbox:1",
                )
            )
            return row
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        notification = pool.submit(deliver).result(timeout=30)
    notification.refresh_from_db()
    assert notification.status == Status.SENT, notification.last_error

    item = page.locator(f'[data-message-id="{notification.pk}"]')
    expect(item).to_be_visible(timeout=15_000)
    expect(item).to_contain_text("Appointment booked")
    expect(badge).to_be_visible()
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    expect(page.locator("[data-inbox-summary]")).to_have_text("1 unread")
    assert page.evaluate("window.stillTheSamePage") is True
    assert_accessible(page, "inbox with a new message")
    screenshot(page, "messages-inbox-live")

    item.get_by_role("button", name="Mark as read").click()
    expect(page.locator("[data-inbox-summary]")).to_have_text("All read")
    expect(badge).to_be_hidden()
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_an_administrator_lands_on_analytics_and_it_fits_a_phone(
    live_server, narrow_page, screenshot, admin_user, clinic
):
    sign_in(narrow_page, live_server.url, admin_user)

    narrow_page.wait_for_url("**/analytics/")
    expect(narrow_page.get_by_text("Showing")).to_be_visible()
    expect(narrow_page.locator("link[rel=icon]")).to_have_count(1)
    narrow_page.wait_for_load_state("networkidle")
    width = narrow_page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 360, width
    assert_accessible(narrow_page, "analytics on a phone")
    screenshot(narrow_page, "messages-analytics-360")
