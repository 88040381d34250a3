"""Today at the desk, in Debian's Chromium: a receptionist at a Kolkata clinic books an 08:00 (Kolkata)
slot that the calendar shows as 08:00, walks a patient in, checks one in and reads the token on the
printable slip, reschedules one and cancels one with a reason; every page passes axe-core and the
Content-Security-Policy. Screenshots go to test-artifacts/desk-*.png."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from opd.core.models import Role
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book
from tests.browser.conftest import assert_accessible
from tests.browser.test_content_security_policy import ADMIN_RULES_OFF
from tests.factories import (
    ClinicFactory,
    DepartmentFactory,
    DoctorFactory,
    PatientFactory,
    SlotFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")


@pytest.fixture
def ten_in_kolkata():
    """The clock at the next 10:00 in Kolkata, ticking (the live server is a thread of this process).
    Forward, never back: the browser keeps the real clock, and the session cookie must not look expired."""
    now = dt.datetime.now(KOLKATA)
    ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
    if ten <= now:
        ten += dt.timedelta(days=1)
    with time_machine.travel(ten, tick=True):
        yield ten


def accessible(page, context: str) -> None:
    # The desk's pages sit in the Django admin's chrome: the same third-party rules are off as on every
    # admin page (tests/browser/test_content_security_policy.py), and axe must not read admin's @import.
    assert_accessible(page, context, disabled_rules=ADMIN_RULES_OFF, preload=False)


def test_the_desk_books_walks_in_checks_in_reschedules_and_cancels_in_clinic_time(
    live_server, page, login, screenshot, csp_violations, org, ten_in_kolkata
):
    clinic = ClinicFactory(organization=org, name="Kolkata OPD", code="kol", time_zone="Asia/Kolkata")
    cardio = DepartmentFactory(clinic=clinic, name="Cardiology", code="cardio")
    priya = DoctorFactory(
        user__organization=org,
        user__first_name="Priya",
        user__last_name="Sen",
        departments=[cardio],
        room="Room 3",
    )
    desk = UserFactory(
        username="kol-desk",
        first_name="Asha",
        role=Role.STAFF,
        organization=org,
        is_staff=True,
        clinics=[clinic],
    )
    tomorrow = ten_in_kolkata.date() + dt.timedelta(days=1)

    def slot(day: dt.date, hour: int, minute: int):
        start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=KOLKATA)
        return SlotFactory(doctor=priya, department=cardio, start=start, capacity=1)

    eight = slot(tomorrow, 8, 0)  # 02:30 UTC
    eight_fifteen = slot(tomorrow, 8, 15)
    walk_in_seat = slot(ten_in_kolkata.date(), 10, 15)
    meera = PatientFactory(
        organization=org, first_name="Meera", last_name="Iyer", date_of_birth=dt.date(1980, 5, 17)
    )
    ravi = PatientFactory(organization=org, first_name="Ravi", last_name="Das")
    anil = PatientFactory(organization=org, first_name="Anil", last_name="Bose")
    sita = PatientFactory(organization=org, first_name="Sita", last_name="Rao")
    lata = PatientFactory(organization=org, first_name="Lata", last_name="Roy")
    to_check_in = appointment_book(actor=desk, patient=anil, slot=slot(ten_in_kolkata.date(), 10, 30))
    to_move = appointment_book(actor=desk, patient=sita, slot=slot(ten_in_kolkata.date(), 10, 45))
    to_cancel = appointment_book(actor=desk, patient=lata, slot=slot(ten_in_kolkata.date(), 11, 0))

    login(page, desk)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Today at the desk").first.click()
    page.wait_for_url("**/admin/scheduling/appointment/today/**")
    expect(page.get_by_text("Asia/Kolkata (IST)").first).to_be_visible()
    arrivals = page.locator("#desk-arrivals")
    expect(arrivals.get_by_role("row", name="10:30")).to_contain_text("Bose, Anil")
    expect(arrivals.get_by_role("row", name="10:30")).to_contain_text("Booked")
    accessible(page, "desk-today")
    screenshot(page, "desk-today")

    # From the keyboard: the search box has the focus; type, Enter, Tab to the result's booking link.
    expect(page.locator("#desk-q")).to_be_focused()
    page.keyboard.type("iyer")
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#desk-found")).to_contain_text("Iyer, Meera")
    accessible(page, "desk-search")
    screenshot(page, "desk-search")
    page.locator("#desk-found").get_by_role("link", name="Book or walk in for Meera Iyer").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/today/book/**")

    # Book in clinic time: tomorrow's 08:00 in Kolkata (02:30 UTC) shows as 08:00 and books that slot.
    page.get_by_label("Department").select_option(label="Cardiology")
    page.get_by_role("button", name="Show open times").click()
    page.get_by_role("link", name=f"{tomorrow:%a %d %b}").click()
    eight_button = page.get_by_role("button", name="08:00 Dr Priya Sen")
    expect(eight_button).to_be_visible()
    expect(page.get_by_role("button", name="08:15 Dr Priya Sen")).to_be_visible()
    accessible(page, "desk-book")
    screenshot(page, "desk-book")
    eight_button.click()
    page.wait_for_url("**/today/?clinic=*")
    expect(page.locator(".messagelist")).to_contain_text(f"{tomorrow:%a %d %b %Y}, 08:00 Asia/Kolkata (IST)")
    booked = Appointment.objects.get(patient=meera)
    assert booked.slot_id == eight.pk
    assert booked.start == dt.datetime(tomorrow.year, tomorrow.month, tomorrow.day, 2, 30, tzinfo=dt.UTC)
    assert eight_fifteen.appointments.count() == 0

    # A walk-in: the next free seat today, checked in at once; the slip shows the token.
    page.locator("#desk-q").fill("Das")
    page.keyboard.press("Enter")
    page.locator("#desk-found").get_by_role("link", name="Book or walk in for Ravi Das").click()
    page.get_by_label("Department").select_option(label="Cardiology")
    page.get_by_role("button", name="Show open times").click()
    page.get_by_role("button", name="Walk in: next free seat today").click()
    page.wait_for_url("**/slip/")
    walk_in = Appointment.objects.get(patient=ravi)
    assert walk_in.slot_id == walk_in_seat.pk
    assert walk_in.status == AppointmentStatus.CHECKED_IN
    expect(page.locator(".desk-slip-token")).to_have_text(f"CARDIO-{walk_in.token_number}")
    expect(page.locator(".desk-slip")).to_contain_text("10:15 Asia/Kolkata (IST)")
    accessible(page, "desk-slip")
    screenshot(page, "desk-slip-walk-in")

    # Check-in from the arrivals list: the slip shows the next token.
    page.get_by_role("link", name="Back to today").click()
    page.get_by_role("button", name="Check in Anil Bose").click()
    page.wait_for_url("**/slip/")
    to_check_in.refresh_from_db()
    assert to_check_in.status == AppointmentStatus.CHECKED_IN
    expect(page.locator(".desk-slip-token")).to_have_text(f"CARDIO-{to_check_in.token_number}")
    expect(page.locator(".desk-slip")).to_contain_text("Anil Bose")
    expect(page.locator(".desk-slip")).to_contain_text("Dr Priya Sen, Room 3")
    page.emulate_media(media="print")
    expect(page.locator("#header")).to_be_hidden()
    expect(page.get_by_role("button", name="Print slip")).to_be_hidden()
    screenshot(page, "desk-slip-print")
    page.emulate_media(media="screen")

    # Reschedule from the appointment's own page (its buttons), to tomorrow 08:15.
    page.goto(f"{live_server.url}/admin/scheduling/appointment/{to_move.pk}/change/")
    expect(page.get_by_text("Asia/Kolkata (IST)").first).to_be_visible()
    accessible(page, "desk-appointment-page")
    screenshot(page, "desk-appointment-page")
    page.locator(".object-tools").get_by_role("link", name="Reschedule").click()
    page.get_by_role("link", name=f"{tomorrow:%a %d %b}").click()
    expect(page.get_by_role("button", name="08:15 Dr Priya Sen")).to_be_visible()
    accessible(page, "desk-reschedule")
    screenshot(page, "desk-reschedule")
    page.get_by_role("button", name="08:15 Dr Priya Sen").click()
    page.wait_for_url("**/today/?clinic=*")
    to_move.refresh_from_db()
    assert to_move.slot_id == eight_fifteen.pk

    # Cancel with a reason (the field is required; the reason is kept).
    page.locator("#desk-arrivals").get_by_role("link", name="Cancel Lata Roy").click()
    # Wait for the cancel page itself: axe run while the click's navigation replaces the document
    # finds no document (a flake seen once in CI).
    page.wait_for_url("**/cancel/**")
    expect(page.get_by_label("Reason")).to_be_visible()
    accessible(page, "desk-cancel")
    screenshot(page, "desk-cancel")
    page.get_by_label("Reason").fill("Patient phoned: travelling")
    page.get_by_role("button", name="Cancel the appointment").click()
    page.wait_for_url("**/today/?clinic=*")
    to_cancel.refresh_from_db()
    assert to_cancel.status == AppointmentStatus.CANCELLED
    assert to_cancel.cancellation_reason == "Patient phoned: travelling"
    expect(page.locator("#desk-arrivals").get_by_role("row", name="11:00")).to_contain_text("Cancelled")
    screenshot(page, "desk-today-after")

    # The patient's page: upcoming appointment in clinic time, allergies, balance.
    page.goto(f"{live_server.url}/admin/patients/patient/{meera.pk}/change/")
    expect(page.locator("#patient-upcoming")).to_contain_text("08:00 Asia/Kolkata (IST)")
    expect(page.locator("#patient-balance")).to_have_text("Nothing owed.")
    accessible(page, "desk-patient-page")
    screenshot(page, "desk-patient-page")
    assert timezone.now() > ten_in_kolkata  # the travelled clock ticked on
