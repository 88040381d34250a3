"""The patient portal in Debian's Chromium: sign up, book, download the .ics, reschedule, cancel; the
slot taken meanwhile; a 360 px phone; the keyboard. Screenshots go to test-artifacts/portal-*.png."""

from __future__ import annotations

import pathlib
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book
from tests.browser.conftest import assert_accessible
from tests.portal.conftest import make_slot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def schedule(clinic, department, doctor):
    """Three days of morning times with Dr House at Riverside Central (Europe/London)."""
    clinic.address = "1 Riverside Walk\nLondon SE1 9XX"
    clinic.phone = "+44 20 7946 0000"
    clinic.save()
    department.doctors.add(doctor)
    return {
        (days, minute): make_slot(doctor, department, days=days, hour=9, minute=minute)
        for days in (1, 2, 3)
        for minute in (0, 15, 30, 45)
    }


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# Every visible form control must have an accessible name from a <label> (or aria-label).
UNLABELLED = """
[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map(el => el.name)
"""


def assert_labelled(page) -> None:
    assert page.evaluate(UNLABELLED) == []


def test_it_signs_up_books_first_available_and_manages_the_appointment(
    live_server, page, screenshot, schedule, settings, clinic
):
    settings.OPD_PUBLIC_CLINICS = "listed"
    clinic.listed_publicly = True
    clinic.save()
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Our clinics")).to_be_visible()
    expect(page.get_by_text("General medicine").first).to_be_visible()
    assert_accessible(page, "portal-home")
    screenshot(page, "portal-home")

    # Sign up, from the clinic's own link
    page.get_by_role("link", name=f"Create an account at {clinic.name}").click()
    page.wait_for_url(f"**/portal/c/{clinic.organization.slug}/{clinic.code}/signup/")
    page.get_by_label("First name").fill("Mary")
    page.get_by_label("Last name").fill("Seacole")
    page.get_by_label("Date of birth").fill("1985-11-23")
    page.get_by_label("Email address").fill("mary@example.org")
    page.get_by_label("Mobile phone").fill("+44 7700 900123")
    page.get_by_label(re.compile(r"^Password(?! again)")).fill("kingston-1805-crimea")
    page.get_by_label("Password again").fill("kingston-1805-crimea")
    assert_labelled(page)
    assert_accessible(page, "portal-signup")
    screenshot(page, "portal-signup")
    page.get_by_role("button", name="Create my account").click()

    # Find: one clinic, one department, so the calendar is already there; first confirm the address
    page.wait_for_url("**/portal/find/")
    expect(page.get_by_text("We sent a link to mary@example.org")).to_be_visible()
    link = re.search(r"http\S+/portal/verify-email/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.wait_for_url("**/portal/find/")
    expect(page.get_by_text("your e-mail address is confirmed")).to_be_visible()
    expect(page.get_by_text("Europe/London").first).to_be_visible()
    expect(page.get_by_role("link", name="Book 09:00 with").first).to_be_visible()
    assert_labelled(page)
    assert_accessible(page, "portal-find")
    screenshot(page, "portal-find")

    # Book the first available time
    page.get_by_role("button", name="Book the first available time").click()
    page.wait_for_url("**/portal/book/first-available/*/")
    page.get_by_label("Reason for the visit").fill("Cough for two weeks, getting worse")
    assert_labelled(page)
    assert_accessible(page, "portal-first-available")
    screenshot(page, "portal-first-available")
    page.get_by_role("button", name="Book the first available time").click()
    page.wait_for_url(re.compile(r"/portal/appointments/\d+/confirmed/$"))
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    appointment = Appointment.objects.get()
    assert appointment.slot_id == schedule[(1, 0)].pk
    expect(page.get_by_text("09:00 Europe/London")).to_be_visible()
    assert_accessible(page, "portal-confirmation")
    screenshot(page, "portal-confirmation")

    # Download the .ics
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Add to calendar (.ics)").click()
    download = download_info.value
    assert download.suggested_filename == f"appointment-{appointment.pk}.ics"
    ics = pathlib.Path(download.path()).read_bytes()
    assert ics.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert f"DTSTART:{appointment.start:%Y%m%dT%H%M%S}Z".encode() in ics

    # See it listed
    page.get_by_role("link", name="My appointments").first.click()
    page.wait_for_url("**/portal/appointments/")
    upcoming = page.locator(".appointment-card")
    assert upcoming.count() == 1
    assert "General medicine" in upcoming.inner_text()
    expect(upcoming.get_by_text("Booked")).to_be_visible()
    assert_accessible(page, "portal-appointments")
    screenshot(page, "portal-appointments")

    # Reschedule to the next day at 09:15
    upcoming.get_by_role("button", name=re.compile("^Reschedule")).click()
    page.wait_for_url("**/reschedule/")
    new_slot = schedule[(2, 15)]
    page.get_by_role("link", name=re.compile(f"^{new_slot.date:%a} {new_slot.date.day} ")).click()
    page.wait_for_url(f"**/reschedule/?day={new_slot.date.isoformat()}")
    page.get_by_label("09:15").check()
    assert_labelled(page)
    assert_accessible(page, "portal-reschedule")
    screenshot(page, "portal-reschedule")
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_text("Your appointment is moved to")).to_be_visible()
    appointment.refresh_from_db()
    assert appointment.slot_id == new_slot.pk

    # Cancel
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.wait_for_url("**/cancel/")
    page.get_by_label("Reason for cancelling (optional)").fill("Feeling better")
    assert_labelled(page)
    assert_accessible(page, "portal-cancel")
    screenshot(page, "portal-cancel")
    page.get_by_role("button", name="Cancel appointment").click()
    page.wait_for_url("**/portal/appointments/")
    expect(page.locator(".message-success")).to_contain_text("is cancelled")
    expect(page.get_by_text("No upcoming appointments")).to_be_visible()
    expect(page.locator("table").get_by_text("Cancelled")).to_be_visible()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert_accessible(page, "portal-appointments-after-cancel")
    screenshot(page, "portal-appointments-after-cancel")


def test_it_offers_the_nearest_times_when_the_slot_is_taken_meanwhile(
    live_server, page, login, screenshot, patient, other_patient, schedule
):
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/after-login/")  # where LOGIN_REDIRECT_URL points
    page.wait_for_url("**/portal/find/")
    wanted = schedule[(1, 15)]
    page.get_by_role("link", name="Book 09:15 with").first.click()
    page.wait_for_url(re.compile(r"/portal/book/\d+/$"))
    page.get_by_label("Reason for the visit").fill("Back pain")

    appointment_book(actor=None, patient=other_patient, slot=wanted)  # someone else was quicker
    page.get_by_role("button", name="Book this appointment").click()

    expect(page.get_by_text("taken by someone else")).to_be_visible()
    expect(page.get_by_role("heading", name="Nearest open times")).to_be_visible()
    assert_accessible(page, "portal-slot-taken")
    screenshot(page, "portal-slot-taken")
    alternatives = page.locator(".alternatives a")
    assert "09:00" in alternatives.first.inner_text()

    alternatives.first.click()
    page.wait_for_url(re.compile(r"/portal/book/\d+/\?reason="))
    assert page.get_by_label("Reason for the visit").input_value() == "Back pain"
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    mine = Appointment.objects.get(patient=patient)
    assert mine.slot_id == schedule[(1, 0)].pk
    assert Appointment.objects.filter(slot=wanted).count() == 1


def test_it_books_on_a_360_pixel_screen(live_server, narrow_page, login, screenshot, patient, schedule):
    page = narrow_page
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/after-login/")  # where LOGIN_REDIRECT_URL points
    page.wait_for_url("**/portal/find/")
    assert fits_the_screen(page)
    assert_labelled(page)
    assert_accessible(page, "portal-narrow-find")
    screenshot(page, "portal-narrow-find")

    page.get_by_role("link", name="Book 09:30 with").first.click()
    page.wait_for_url(re.compile(r"/portal/book/\d+/$"))
    page.get_by_label("Reason for the visit").fill("Follow-up")
    assert fits_the_screen(page)
    assert_labelled(page)
    assert_accessible(page, "portal-narrow-book")
    screenshot(page, "portal-narrow-book")
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    assert fits_the_screen(page)
    assert_accessible(page, "portal-narrow-confirmation")
    screenshot(page, "portal-narrow-confirmation")

    page.goto(f"{live_server.url}/portal/appointments/")
    assert page.locator(".appointment-card").count() == 1
    assert fits_the_screen(page)
    assert_accessible(page, "portal-narrow-appointments")
    screenshot(page, "portal-narrow-appointments")

    page.locator(".appointment-card").get_by_role("button", name=re.compile("^Cancel")).click()
    page.wait_for_url("**/cancel/")
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.locator(".message-success")).to_contain_text("is cancelled")
    expect(page.locator("table").get_by_text("Cancelled")).to_be_visible()
    assert fits_the_screen(page)
    assert_accessible(page, "portal-narrow-appointments-after-cancel")
    screenshot(page, "portal-narrow-appointments-after-cancel")


def test_it_books_with_the_keyboard_alone_with_a_visible_focus(live_server, page, login, patient, schedule):
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/after-login/")  # where LOGIN_REDIRECT_URL points
    page.wait_for_url("**/portal/find/")

    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.className")
        if "time" in focused.split():
            break
    else:
        pytest.fail("no time could be reached with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/portal/book/\d+/$"))
    page.get_by_label("Reason for the visit").focus()
    page.keyboard.type("Rash")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Book this appointment"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/confirmed/$"))
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    assert Appointment.objects.filter(patient=patient, reason="Rash").count() == 1
