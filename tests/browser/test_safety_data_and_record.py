"""In Chromium: the safety-data page (add, resolve, stop, with the keyboard and labels) reached from the
consultation panel, and the done list opening a completed consultation read-only where an addendum is
added. Axe-clean, screenshots in test-artifacts/."""

from __future__ import annotations

import pytest

from consultations.models import Addendum
from consultations.services import consultation_complete
from patients.models import Medication, Problem
from tests.browser.conftest import assert_accessible, sign_in
from tests.consultations.factories import CALM_VITALS, open_consultation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def test_a_doctor_keeps_the_safety_data_from_the_panel(
    asgi_live_server, page, csp_violations, screenshot, doctor, department, patient
):
    draft = open_consultation(doctor=doctor, department=department, patient=patient)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/consultations/appointments/{draft.appointment_id}/panel/")
    page.get_by_role("link", name="Allergies, problems and medications").first.click()
    page.get_by_role("heading", name=f"Safety data: {patient.full_name}").wait_for()
    assert_accessible(page, "empty safety-data page")

    # A problem, typed with the keyboard through the labelled fields; the code is normalized.
    page.get_by_text("Add a problem").click()
    page.get_by_label("Description").fill("Essential hypertension")
    page.get_by_label("ICD-10 code").fill("i10")
    page.get_by_label("ICD-10 code").press("Enter")
    page.get_by_text("The problem was recorded.").wait_for()
    row = page.locator("tr", has_text="Essential hypertension")
    assert "I10" in row.inner_text()

    # A bad code stays on the page, named beside the field; nothing is written.
    page.get_by_text("Add a problem").click()
    page.get_by_label("Description").fill("Something")
    page.get_by_label("ICD-10 code").fill("high")
    page.get_by_role("button", name="Add problem").click()
    page.locator(".field-error", has_text="Enter an ICD-10 code").wait_for()
    assert Problem.objects.count() == 1
    assert_accessible(page, "safety-data page with a refused code")

    page.get_by_text("Add a medication").click()
    page.get_by_label("Name").fill("Amlodipine")
    page.get_by_label("Dose or strength").fill("5 mg")
    page.get_by_label("Frequency").fill("once daily")
    page.get_by_role("button", name="Add medication").click()
    page.get_by_text("The medication was recorded.").wait_for()
    assert_accessible(page, "safety-data page with entries")
    screenshot(page, "safety-data-page")

    page.get_by_role("button", name="Stop Amlodipine").click()
    page.get_by_text("The medication was stopped.").wait_for()
    page.get_by_role("button", name="Resolve Essential hypertension").click()
    page.get_by_text("The problem was resolved.").wait_for()
    assert Medication.objects.get().status == "stopped"
    assert Problem.objects.get().status == "resolved"

    # Back to the panel it was opened from.
    page.get_by_role("link", name="Back").click()
    page.wait_for_url(f"**/appointments/{draft.appointment_id}/panel/")


def test_the_done_list_opens_the_record_and_takes_an_addendum(
    asgi_live_server, page, csp_violations, screenshot, doctor, department, patient
):
    draft = open_consultation(
        doctor=doctor,
        department=department,
        patient=patient,
        assessment="Viral pharyngitis",
        plan="Fluids",
        **CALM_VITALS,
    )
    done = consultation_complete(actor=doctor.user, consultation=draft)
    sign_in(page, asgi_live_server.url, doctor.user)
    page.goto(f"{asgi_live_server.url}/queue/dashboard/")

    page.locator("#done-title ~ ul").get_by_role("link", name=patient.full_name).click()
    page.get_by_role("heading", name=f"Consultation record: {patient.full_name}").wait_for()
    assert "Viral pharyngitis" in page.locator(".record-assessment").inner_text()
    assert page.locator("textarea").count() == 1  # only the addendum

    page.get_by_label("Addendum").fill("Throat swab negative: no antibiotics needed.")
    page.get_by_role("button", name="Add addendum").click()
    page.get_by_text("Addendum added.").wait_for()
    assert "Throat swab negative" in page.locator("ol.addenda").inner_text()
    assert Addendum.objects.get(consultation=done).author == doctor.user
    assert_accessible(page, "completed consultation record")
    screenshot(page, "consultation-record-addendum")
