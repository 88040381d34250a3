"""The consultation panel (an htmx fragment and a full-page fallback) and who may use it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consultations.models import Consultation, ConsultationStatus
from scheduling.models import Appointment, AppointmentStatus

from .factories import booked_appointment

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
CALM_FORM = {
    "respiratory_rate": "16",
    "spo2": "98",
    "on_supplemental_oxygen": "false",
    "systolic_bp": "120",
    "diastolic_bp": "80",
    "pulse": "70",
    "consciousness": "A",
    "temperature": "37.0",
}


def url(name: str, appointment) -> str:
    return reverse(f"consultations:{name}", args=[appointment.pk])


@pytest.fixture
def as_doctor(client, doctor):
    client.force_login(doctor.user)
    return client


def opened(client, appointment):
    response = client.post(url("panel-open", appointment), **HTMX)
    assert response.status_code == 200
    return Consultation.objects.get(appointment=appointment)


def test_the_panel_offers_to_open_the_consultation_of_a_checked_in_patient(as_doctor, checked_in):
    response = as_doctor.get(url("panel", checked_in), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment for htmx
    assert f'id="consultation-panel-{checked_in.pk}"' in html
    assert "Open consultation" in html
    assert checked_in.patient.full_name in html


def test_without_htmx_the_panel_is_a_whole_page(as_doctor, checked_in):
    html = as_doctor.get(url("panel", checked_in)).content.decode()
    assert "<html" in html
    assert "Open consultation" in html


def test_a_booked_patient_cannot_be_seen_yet(as_doctor, doctor, department, patient):
    appointment = booked_appointment(doctor=doctor, department=department, patient=patient)
    html = as_doctor.get(url("panel", appointment), **HTMX).content.decode()
    assert "Open consultation" not in html
    assert "once the patient has checked in" in html


def test_opening_then_recording_vitals_shows_the_news2(as_doctor, checked_in):
    response = as_doctor.post(url("panel-open", checked_in), **HTMX)
    assert "Save draft" in response.content.decode()
    assert "NEWS2 <strong>incomplete</strong>" in response.content.decode()
    checked_in.refresh_from_db()
    assert checked_in.status == AppointmentStatus.IN_CONSULTATION

    response = as_doctor.post(
        url("panel-save", checked_in),
        {**CALM_FORM, "respiratory_rate": "22", "on_supplemental_oxygen": "true", "systolic_bp": "100"},
        **HTMX,
    )

    html = response.content.decode()
    assert 'class="news2-total">6</strong>' in html
    assert '<span class="badge badge-medium">Medium</span>' in html
    # The chart's clinical response for 5-6, as an alert: who to tell and how soon.
    assert '<div class="news2-response news2-response-urgent" role="alert">' in html
    assert "<strong>Urgent response</strong>: Inform the doctor caring for the patient now" in html
    consultation = Consultation.objects.get(appointment=checked_in)
    assert (consultation.news2_total, consultation.news2_band) == (6, "medium")
    checked_in.refresh_from_db()
    assert checked_in.is_priority


def test_it_shows_errors_beside_the_fields_and_saves_nothing(as_doctor, checked_in):
    opened(as_doctor, checked_in)

    response = as_doctor.post(url("panel-save", checked_in), {**CALM_FORM, "systolic_bp": "350"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 400
    assert f'id="a{checked_in.pk}-systolic_bp_error"' in html
    assert "Systolic blood pressure must be between 50 and 300 mmHg" in html
    assert Consultation.objects.get(appointment=checked_in).systolic_bp is None


def test_the_services_refusal_is_shown_beside_its_field(as_doctor, checked_in):
    opened(as_doctor, checked_in)

    response = as_doctor.post(url("panel-save", checked_in), {**CALM_FORM, "diastolic_bp": "130"}, **HTMX)

    html = response.content.decode()
    assert f'id="a{checked_in.pk}-diastolic_bp_error"' in html
    assert "must be below the systolic" in html
    assert Consultation.objects.get(appointment=checked_in).diastolic_bp is None


def test_notes_prescription_lines_and_completion(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    record = {**CALM_FORM, "chief_complaint": "Cough", "diagnosis_code": "j20.9", "plan": "Fluids"}
    as_doctor.post(url("panel-save", checked_in), record, **HTMX)
    line = {
        "line-medication": "Amoxicillin",
        "line-strength": "500 mg",
        "line-dose": "1 capsule",
        "line-route": "oral",
    }
    as_doctor.post(
        url("panel-prescription", checked_in),
        {**record, **line, "line-frequency": "tds", "line-quantity": "21"},
        **HTMX,
    )
    response = as_doctor.post(
        url("panel-prescription", checked_in),
        {**record, **line, "line-medication": "Paracetamol", "line-frequency": "qds", "line-quantity": "32"},
        **HTMX,
    )
    assert "Paracetamol" in response.content.decode()

    response = as_doctor.post(url("panel-complete", checked_in), record, **HTMX)

    html = response.content.decode()
    consultation = Consultation.objects.get(appointment=checked_in)
    assert consultation.status == ConsultationStatus.COMPLETED
    assert consultation.diagnosis_code == "J20.9"
    prescription = consultation.prescriptions.get()
    assert [item.medication for item in prescription.items.all()] == ["Amoxicillin", "Paracetamol"]
    assert prescription.issued_at is not None
    assert Appointment.objects.get(pk=checked_in.pk).status == AppointmentStatus.COMPLETED
    assert "Save draft" not in html  # read-only now
    assert "Complete consultation" not in html
    assert reverse("consultations:prescription-print", args=[prescription.pk]) in html


def test_a_bad_prescription_line_is_shown_beside_its_fields(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    response = as_doctor.post(
        url("panel-prescription", checked_in), {"line-medication": "Amoxicillin"}, **HTMX
    )
    assert f'id="a{checked_in.pk}-line-dose_error"' in response.content.decode()
    assert not Consultation.objects.get(appointment=checked_in).prescriptions.exists()


def test_without_htmx_a_write_redirects_back_to_the_panel(as_doctor, checked_in):
    response = as_doctor.post(url("panel-open", checked_in))
    assert response.status_code == 302
    assert response["Location"] == url("panel", checked_in)


def test_a_second_open_is_refused_with_a_message(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    html = as_doctor.post(url("panel-open", checked_in), **HTMX).content.decode()
    assert "already has a consultation" in html
    assert Consultation.objects.count() == 1


def test_only_the_appointments_doctor_uses_the_panel(client, checked_in, colleague, staff_user, patient):
    for user in (colleague.user, staff_user, patient.user):
        client.force_login(user)
        assert client.get(url("panel", checked_in)).status_code == 403
        assert client.post(url("panel-open", checked_in)).status_code == 403
    assert not Consultation.objects.exists()


def test_other_clinics_and_tenants_get_404(client, checked_in, other_clinic_doctor, other_org_doctor):
    for user in (other_clinic_doctor.user, other_org_doctor.user):
        client.force_login(user)
        assert client.get(url("panel", checked_in)).status_code == 404
        assert client.post(url("panel-open", checked_in)).status_code == 404


def test_it_asks_to_log_in(client, checked_in):
    response = client.get(url("panel", checked_in))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_completed_consultation_refuses_edits_with_a_message(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    as_doctor.post(
        url("panel-complete", checked_in),
        {"vitals_not_taken_reason": "Video call", "assessment": "Well", "plan": "None"},
        **HTMX,
    )

    response = as_doctor.post(url("panel-save", checked_in), CALM_FORM, **HTMX)

    assert "completed and read-only" in response.content.decode()
    assert Consultation.objects.get(appointment=checked_in).pulse is None


def test_the_fragment_varies_on_the_htmx_header(as_doctor, checked_in):
    assert "HX-Request" in as_doctor.get(url("panel", checked_in))["Vary"]


# One record: autosave with a version, complete with what was typed


def test_the_autosave_answers_json_with_the_new_version_and_refuses_a_stale_one(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    autosave = {"HTTP_ACCEPT": "application/json"}

    saved = as_doctor.post(url("panel-save", checked_in), {"plan": "Rest", "version": "1"}, **autosave)
    stale = as_doctor.post(url("panel-save", checked_in), {"plan": "Admit", "version": "1"}, **autosave)

    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2
    assert saved.json()["saved_at"]
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "version_conflict"
    assert "changed: plan" in stale.json()["error"]["message"]
    assert Consultation.objects.get(appointment=checked_in).plan == "Rest"


def test_complete_keeps_the_plan_typed_but_never_saved(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    as_doctor.post(url("panel-save", checked_in), {**CALM_FORM, "assessment": "Cough", "plan": "Old"}, **HTMX)

    record = {**CALM_FORM, "assessment": "Cough", "plan": "Edited, never saved", "version": "2"}
    response = as_doctor.post(url("panel-complete", checked_in), record, **HTMX)

    assert response.status_code == 200
    consultation = Consultation.objects.get(appointment=checked_in)
    assert (consultation.status, consultation.plan) == (ConsultationStatus.COMPLETED, "Edited, never saved")


def test_complete_names_each_missing_part_beside_its_field_and_writes_nothing(as_doctor, checked_in):
    opened(as_doctor, checked_in)

    response = as_doctor.post(url("panel-complete", checked_in), {"chief_complaint": "Cough"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 400
    for name in ("vitals_not_taken_reason", "assessment", "plan"):
        assert f'id="a{checked_in.pk}-{name}_error"' in html
    assert "Cough" in html  # what was typed is shown again, not lost
    consultation = Consultation.objects.get(appointment=checked_in)
    assert (consultation.status, consultation.chief_complaint) == (ConsultationStatus.DRAFT, "")


def test_complete_refuses_a_medication_line_typed_but_not_added(as_doctor, checked_in):
    opened(as_doctor, checked_in)
    record = {"vitals_not_taken_reason": "Video call", "assessment": "Well", "plan": "None"}

    response = as_doctor.post(
        url("panel-complete", checked_in), {**record, "line-medication": "Amoxicillin"}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "filled in but not added" in html
    assert 'value="Amoxicillin"' in html
    assert Consultation.objects.get(appointment=checked_in).status == ConsultationStatus.DRAFT
