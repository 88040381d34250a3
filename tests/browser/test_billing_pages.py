"""Money at the desk in Chromium: a payment recorded from the admin's invoice page, the printable receipt
(screen and print stylesheet), the cash-up, and the patient's "What I owe" on a laptop and a 360 px phone.
Each page is axe-clean and within the Content-Security-Policy; screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import Payment
from billing.services import fee_save, payment_record
from scheduling.services import appointment_check_in
from tests.browser.conftest import assert_accessible
from tests.browser.test_content_security_policy import ADMIN_RULES_OFF
from tests.browser.test_portal_booking import UNLABELLED
from tests.scheduling.queue_helpers import booked

# The live server runs in a thread of this process, so the pinned clinic daytime is its clock too.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.usefixtures("daytime"),
]


@pytest.fixture
def invoice(admin_user, staff_user, doctor, department, patient):
    """Ada checked in today for a 45.30 consultation: the invoice raised at check-in."""
    fee_save(actor=admin_user, department=department, description="Consultation", amount="45.30")
    appointment_check_in(
        actor=staff_user, appointment=booked(staff_user, doctor, department, patient=patient)
    )
    return patient.invoices.get()


def test_the_desk_takes_a_payment_and_prints_the_receipt(
    live_server, page, login, screenshot, invoice, staff_user
):
    base = live_server.url
    login(page, staff_user)
    page.goto(f"{base}/admin/billing/invoice/{invoice.pk}/change/")
    page.get_by_role("link", name="Record payment").click()

    expect(page.get_by_text("still owed £45.30")).to_be_visible()
    assert_accessible(page, "admin-record-payment", disabled_rules=ADMIN_RULES_OFF, preload=False)
    page.get_by_label("Card", exact=True).check()
    page.get_by_label("Amount").fill("50.00")
    page.get_by_label("Card terminal reference").fill("T-2041")
    page.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("At most 45.30 (the balance).")).to_be_visible()  # beside the amount
    assert not Payment.objects.exists()
    page.get_by_label("Amount").fill("45.30")
    page.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("Recorded card £45.30")).to_be_visible()

    page.get_by_role("link", name="Receipt").first.click()
    expect(page.get_by_role("heading", name=f"Receipt {invoice.number}")).to_be_visible()
    expect(page.get_by_text("Terminal T-2041")).to_be_visible()
    assert_accessible(page, "receipt")
    screenshot(page, "billing-receipt")
    # On paper: the receipt without the site's header, footer and buttons.
    page.emulate_media(media="print")
    assert page.locator(".site-header").is_hidden()
    assert page.get_by_role("button", name="Print").is_hidden()
    expect(page.get_by_role("heading", name=f"Receipt {invoice.number}")).to_be_visible()
    screenshot(page, "billing-receipt-print")
    page.emulate_media(media="screen")

    page.goto(f"{base}/billing/cash-up/")
    expect(page.get_by_role("cell", name="£45.30").first).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    assert_accessible(page, "cash-up")
    screenshot(page, "billing-cash-up")


def test_a_patient_sees_what_they_owe_and_their_receipts(
    live_server, page, narrow_page, login, screenshot, invoice, staff_user, patient
):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="20.00")
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/")
    page.get_by_role("link", name="What I owe").click()

    expect(page.get_by_text("You owe £25.30")).to_be_visible()
    assert_accessible(page, "portal-bills")
    screenshot(page, "portal-bills")
    page.get_by_role("link", name=f"Invoice {invoice.number}").click()
    expect(page.get_by_text("£20.00").first).to_be_visible()
    assert_accessible(page, "portal-receipt")

    login(narrow_page, patient.user)
    narrow_page.goto(f"{live_server.url}/portal/bills/")
    expect(narrow_page.get_by_text("You owe £25.30")).to_be_visible()
    assert narrow_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(narrow_page, "portal-narrow-bills")
    screenshot(narrow_page, "portal-narrow-bills")
    narrow_page.goto(f"{live_server.url}/billing/invoices/{invoice.pk}/receipt/")
    assert narrow_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(narrow_page, "portal-narrow-receipt")
    screenshot(narrow_page, "portal-narrow-receipt")
