"""My record and my profile in Chromium, on a laptop and on a 360 px phone."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from consultations.services import prescription_create, result_create
from notifications.models import ContactPreference
from tests.browser.conftest import assert_accessible
from tests.browser.test_portal_booking import UNLABELLED
from tests.consultations.factories import complete
from tests.portal.conftest import visit_in_consultation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def completed(doctor, department, patient):
    consultation = visit_in_consultation(
        doctor=doctor,
        department=department,
        patient=patient,
        chief_complaint="Cough for two weeks",
        assessment="Acute bronchitis",
        diagnosis_code="J20.9",
        plan="Rest and fluids. Come back if you get short of breath.",
    )
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[
            {
                "medication": "Amoxicillin",
                "strength": "500 mg",
                "dose": "1 capsule",
                "frequency": "three times a day",
                "duration": "5 days",
                "quantity": 15,
                "instructions": "Finish the course.",
            }
        ],
    )
    result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="C-reactive protein",
        value="48",
        unit="mg/L",
        reference_low=Decimal(0),
        reference_high=Decimal(5),
    )
    return complete(consultation, actor=doctor.user)


def test_it_shows_my_record_read_only(live_server, page, narrow_page, login, screenshot, patient, completed):
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/record/")

    expect(page.get_by_text("Acute bronchitis")).to_be_visible()
    expect(page.get_by_text("Amoxicillin 500 mg")).to_be_visible()
    expect(page.get_by_text("outside the range")).to_be_visible()
    assert page.locator("main form").count() == 0
    assert_accessible(page, "portal-record")
    screenshot(page, "portal-record")

    login(narrow_page, patient.user)
    narrow_page.goto(f"{live_server.url}/portal/record/")
    expect(narrow_page.get_by_text("Acute bronchitis")).to_be_visible()
    assert narrow_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(narrow_page, "portal-narrow-record")
    screenshot(narrow_page, "portal-narrow-record")


def test_it_saves_my_message_preferences(live_server, page, login, screenshot, patient):
    login(page, patient.user)
    page.goto(f"{live_server.url}/portal/profile/")

    page.get_by_label("Text message (SMS)").uncheck()
    page.get_by_label("If I can be reached several ways").select_option("email")
    page.get_by_role("button", name="Save message preferences").click()

    expect(page.get_by_text("Your message preferences are saved.")).to_be_visible()
    pref = ContactPreference.objects.get(patient=patient)
    assert (pref.sms_enabled, pref.preferred_channel) == (False, "email")
    assert page.evaluate(UNLABELLED) == []
    assert_accessible(page, "portal-profile")
    screenshot(page, "portal-profile")
