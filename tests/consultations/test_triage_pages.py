"""The nurses' pages: the triage page and its form, the summary on the staff view of a doctor's queue
(vitals, allergies, the visit reason, never the doctor's notes), NEWS2 on the doctor's dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consultations.models import TriageObservation
from consultations.services import consultation_open, consultation_update, triage_record
from patients.services import allergy_record, problem_add
from scheduling.services import queue_call_next
from tests.factories import PatientFactory

from .factories import CALM_VITALS, checked_in_appointment
from .test_triage import HIGH_VITALS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]

SECRET_NOTE = "Confided: worried about the biopsy result"


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def triage_url(clinic) -> str:
    return reverse("consultations:triage", args=[clinic.pk])


def test_a_nurse_sees_the_clinics_waiting_patients_with_a_vitals_form_each(
    signed_in, nurse, clinic, checked_in
):
    triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)

    page = page_of(signed_in(nurse).get(triage_url(clinic)))

    assert checked_in.patient.full_name in page
    assert "NEWS2 11 · Emergency response" in page
    assert f'action="{reverse("consultations:triage-record", args=[checked_in.pk])}"' in page
    assert f'for="t{checked_in.pk}-pulse"' in page  # labelled fields, unique per patient
    assert f'data-ws-path="/ws/queue/clinic/{clinic.pk}/"' in page


def test_a_patient_not_triaged_yet_says_so(signed_in, nurse, clinic, checked_in):
    assert "Not triaged" in page_of(signed_in(nurse).get(triage_url(clinic)))


def test_the_form_records_vitals_and_goes_back_to_the_list(signed_in, nurse, clinic, checked_in):
    form = {key: str(value) for key, value in CALM_VITALS.items()}
    form["on_supplemental_oxygen"] = "false"

    response = signed_in(nurse).post(
        reverse("consultations:triage-record", args=[checked_in.pk]), form, follow=True
    )

    page = page_of(response)
    assert "NEWS2 0, no escalation" in page
    observation = TriageObservation.objects.get()
    assert (observation.recorded_by, observation.news2_total) == (nurse, 0)


def test_the_form_shows_refused_values_beside_their_fields_and_writes_nothing(signed_in, nurse, checked_in):
    response = signed_in(nurse).post(
        reverse("consultations:triage-record", args=[checked_in.pk]), {"pulse": "400", "systolic_bp": "120"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="t{checked_in.pk}-pulse_error"' in page
    assert "looks like a data-entry error" in page
    assert not TriageObservation.objects.exists()


def test_reception_admins_and_patients_are_refused_and_other_tenants_unknown(
    signed_in, staff_user, admin_user, patient, nurse, clinic, other_org_clinic, checked_in
):
    record = reverse("consultations:triage-record", args=[checked_in.pk])
    for user in (staff_user, admin_user, patient.user):
        client = signed_in(user)
        assert client.get(triage_url(clinic)).status_code == 403
        assert client.post(record, {"pulse": "80"}).status_code == 403
        assert client.get(reverse("consultations:summary", args=[checked_in.pk])).status_code == 403
    assert signed_in(nurse).get(triage_url(other_org_clinic)).status_code == 404
    assert not TriageObservation.objects.exists()


def test_a_doctor_of_the_clinic_opens_the_triage_page(signed_in, doctor, clinic, checked_in):
    assert checked_in.patient.full_name in page_of(signed_in(doctor.user).get(triage_url(clinic)))


def test_the_staff_queue_view_shows_a_nurse_vitals_allergies_and_reason_but_no_notes(
    signed_in, nurse, doctor, department, org
):
    patient = PatientFactory(organization=org, first_name="Mary", last_name="Seacole")
    appt = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    appt.reason = "Chest pain since the morning"
    appt.save(update_fields=["reason"])
    allergy_record(
        actor=doctor.user,
        patient=patient,
        substance="Penicillin",
        category="drug",
        reaction="Rash",
        severity="severe",
    )
    problem_add(actor=doctor.user, patient=patient, description="Type 2 diabetes", icd10_code="e119")
    triage_record(actor=nurse, appointment=appt, **HIGH_VITALS)
    queue_call_next(actor=doctor.user, doctor=doctor)
    consultation = consultation_open(actor=doctor.user, appointment=appt)
    consultation_update(
        actor=doctor.user, consultation=consultation, chief_complaint=SECRET_NOTE, plan=SECRET_NOTE
    )
    client = signed_in(nurse)

    queue_page = page_of(client.get(reverse("queue:doctor", args=[doctor.pk])))
    summary_url = reverse("consultations:summary", args=[appt.pk])
    assert f'hx-get="{summary_url}"' in queue_page
    assert "Loading vitals and notes" not in queue_page
    assert SECRET_NOTE not in queue_page

    summary = page_of(client.get(summary_url, HTTP_HX_REQUEST="true"))
    assert "Penicillin" in summary
    assert "Type 2 diabetes" in summary
    assert "(E11.9)" in summary
    assert "Chest pain since the morning" in summary
    assert "NEWS2 11" in summary
    assert "125" in summary  # the pulse
    assert SECRET_NOTE not in summary
    assert SECRET_NOTE not in page_of(client.get(summary_url))


def test_reception_on_the_staff_queue_view_is_not_left_loading(signed_in, staff_user, doctor, checked_in):
    queue_call_next(actor=doctor.user, doctor=doctor)

    page = page_of(signed_in(staff_user).get(reverse("queue:doctor", args=[doctor.pk])))

    assert "hx-get" not in page
    assert "shown to the clinic's nurses and to the doctor" in page


def test_the_doctors_dashboard_shows_the_news2_response_on_the_waiting_row(
    signed_in, nurse, doctor, checked_in
):
    triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)

    page = page_of(signed_in(doctor.user).get(reverse("queue:dashboard")))

    assert "NEWS2 11 · Emergency response" in page
    assert "call the emergency team" in page
    assert "Triage by" in page


def test_the_panel_says_the_vitals_came_from_triage(signed_in, nurse, doctor, checked_in):
    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    consultation_open(actor=doctor.user, appointment=checked_in)

    panel = page_of(signed_in(doctor.user).get(reverse("consultations:panel", args=[checked_in.pk])))

    assert "Vitals taken at triage by" in panel
    assert 'value="70"' in panel  # the pulse, prefilled


def test_the_waiting_rooms_page_links_a_nurse_to_triage(signed_in, nurse, staff_user, clinic):
    link = f'href="{triage_url(clinic)}"'
    assert link in page_of(signed_in(nurse).get(reverse("queue:waiting-rooms")))
    assert link not in page_of(signed_in(staff_user).get(reverse("queue:waiting-rooms")))
