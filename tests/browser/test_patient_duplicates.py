"""Reception in the admin, in Chromium: registering someone already registered shows the possible matches
and takes an explicit "This is a new patient"; a duplicate already made is merged from its page (#17)."""

from __future__ import annotations

import datetime as dt

import pytest

from patients.models import Patient, PatientStatus
from patients.services import patient_create
from scheduling.models import Appointment
from tests.browser.conftest import assert_accessible
from tests.browser.test_content_security_policy import ADMIN_RULES_OFF
from tests.conftest import future_slot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def fill_registration(page, *, first_name: str) -> None:
    page.get_by_label("First name").fill(first_name)
    page.get_by_label("Last name").fill("Seacole")
    page.get_by_label("Date of birth").fill("1985-11-23")
    page.locator("#id_phone").fill("07700 900123")


def test_it_warns_of_a_possible_duplicate_then_registers_when_told_it_is_a_new_patient(
    live_server, page, login, csp_violations, screenshot, org, clinic, staff_user
):
    mary = patient_create(
        actor=None,
        organization=org,
        registered_at_clinic=clinic,
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
        phone="+44 7700 900123",
    )
    login(page, staff_user)
    page.goto(f"{live_server.url}/admin/patients/patient/add/")
    fill_registration(page, first_name="Marie")
    page.get_by_role("button", name="Save", exact=True).click()

    # Refused, with the match named (name, birth date, MRN, clinic, why) and a box to confirm.
    page.locator(".errornote").wait_for()
    matches = page.locator("ul.possible-duplicates")
    assert f"Seacole, Mary · born 23 Nov 1985 · {mary.mrn}" in matches.inner_text()
    assert "same date of birth, similar name" in matches.inner_text()
    assert "same phone number" in matches.inner_text()
    assert Patient.objects.count() == 1
    assert_accessible(
        page, "registration with possible duplicates", disabled_rules=ADMIN_RULES_OFF, preload=False
    )
    screenshot(page, "patient-possible-duplicate")

    # The typed values are kept, and nothing else is asked; saving again without the box is refused again.
    assert page.get_by_label("First name").input_value() == "Marie"
    assert "This field is required" not in page.content()
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("ul.possible-duplicates").wait_for()
    assert Patient.objects.count() == 1

    page.get_by_label("This is a new patient").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".messagelist .success").wait_for()
    marie = Patient.objects.exclude(pk=mary.pk).get()
    assert (marie.first_name, marie.phone) == ("Marie", "+447700900123")


def test_it_merges_a_duplicate_into_the_record_to_keep_after_showing_what_moves(
    live_server, page, login, csp_violations, screenshot, org, clinic, staff_user, doctor, department, book
):
    keep = patient_create(
        actor=None,
        organization=org,
        registered_at_clinic=clinic,
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
    )
    duplicate = patient_create(
        actor=None,
        organization=org,
        registered_at_clinic=clinic,
        first_name="Marie",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
        confirm_new_patient=True,
    )
    appointment = book(duplicate, future_slot(doctor, department))
    login(page, staff_user)

    # From the list: select the duplicate, "Merge into…".
    page.goto(f"{live_server.url}/admin/patients/patient/?q={duplicate.mrn}")
    page.locator(f'input[name="_selected_action"][value="{duplicate.pk}"]').check()
    page.locator('select[name="action"]').select_option("merge_into")
    page.get_by_role("button", name="Go").click()
    page.get_by_label("MRN of the record to keep").fill(keep.mrn)
    page.get_by_role("button", name="Show what moves").click()

    table = page.locator("table", has_text="What moves")
    table.wait_for()
    assert "Appointments" in table.inner_text()
    assert_accessible(page, "merge confirmation", disabled_rules=ADMIN_RULES_OFF, preload=False)
    screenshot(page, "patient-merge-confirm")
    assert Appointment.objects.get(pk=appointment.pk).patient_id == duplicate.pk  # nothing moved yet

    page.get_by_role("button", name=f"Merge {duplicate.mrn} into {keep.mrn}").click()
    page.locator(".messagelist .success").wait_for()
    assert f"{duplicate.mrn} was merged into {keep.mrn}" in page.locator(".messagelist").inner_text()
    assert Appointment.objects.get(pk=appointment.pk).patient_id == keep.pk
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (PatientStatus.MERGED, keep.pk)

    # The merged record says where it went.
    page.goto(f"{live_server.url}/admin/patients/patient/{duplicate.pk}/change/")
    assert f"{keep.mrn}" in page.locator(".field-merged_into_link").inner_text()
    assert_accessible(page, "merged record", disabled_rules=ADMIN_RULES_OFF, preload=False)
    screenshot(page, "patient-merged-record")
