"""Who opened my record, and the break-the-glass form, in Chromium: readable, accessible (axe-core), and
under the strict Content-Security-Policy (the `page` fixture fails on any violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consultations.services import prescription_create
from tests.browser.conftest import assert_accessible
from tests.conftest import BREAK_GLASS, token_for
from tests.consultations.factories import completed_consultation, open_consultation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def test_the_patient_sees_who_opened_their_record(
    live_server, page, narrow_page, login, screenshot, doctor, colleague, department, patient
):
    from rest_framework.test import APIClient

    consultation = completed_consultation(doctor=doctor, department=department, patient=patient)
    for user, params in ((doctor.user, {}), (colleague.user, {"reason": BREAK_GLASS})):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        assert client.get(f"/api/v1/consultations/{consultation.pk}/", params).status_code == 200

    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/")
    page.get_by_role("link", name="Who opened my record").click()

    expect(page.get_by_role("heading", name="Who opened my record")).to_be_visible()
    expect(page.get_by_text("Opened with a stated reason (no appointment with you)")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(3)
    assert_accessible(page, "portal-accesses")
    screenshot(page, "portal-accesses")

    login(narrow_page, patient.user)
    narrow_page.goto(f"{live_server.url}/portal/record/accesses/")
    assert narrow_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(narrow_page, "portal-narrow-accesses")


def test_a_doctor_without_a_care_relationship_gives_a_reason_on_the_page(
    live_server, page, login, screenshot, doctor, colleague, department, patient
):
    draft = open_consultation(doctor=doctor, department=department, patient=patient)
    prescription = prescription_create(
        actor=doctor.user,
        consultation=draft,
        items=[{"medication": "Aspirin", "dose": "75 mg", "frequency": "daily", "quantity": 28}],
    )
    login(page, colleague.user)
    page.goto(f"{live_server.url}/consultations/prescriptions/{prescription.pk}/print/")

    expect(page.get_by_role("heading", name="A reason is required to open this record")).to_be_visible()
    assert_accessible(page, "break-glass")
    page.get_by_label("Reason").fill("urgent")
    page.get_by_role("button", name="Open the record").click()
    expect(page.get_by_text("At least")).to_be_visible()  # beside the field, nothing opened
    assert_accessible(page, "break-glass-error")
    screenshot(page, "break-glass")
    page.get_by_label("Reason").fill(BREAK_GLASS)
    page.get_by_role("button", name="Open the record").click()

    expect(page.get_by_text("Aspirin")).to_be_visible()
