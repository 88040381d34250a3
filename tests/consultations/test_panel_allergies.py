"""The top of the consultation panel (age, sex, allergies, reason for visit) and the allergy override in
the panel's prescription form."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from consultations.models import Prescription
from opd.core.audit import flush_pending
from opd.core.models import AuditEvent
from patients.models import years_before
from patients.services import allergy_record, allergy_set_no_known_allergies, patient_update

from .factories import checked_in_appointment, open_consultation

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
LINE = {
    "medication": "Co-amoxiclav",
    "strength": "625 mg",
    "dose": "1 tablet",
    "route": "oral",
    "frequency": "three times a day",
    "duration": "5 days",
    "quantity": "15",
    "instructions": "",
}


def panel(client, appointment) -> str:
    response = client.get(reverse("consultations:panel", args=[appointment.pk]), **HTMX)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def as_doctor(client, doctor):
    client.force_login(doctor.user)
    return client


def test_it_shows_age_sex_and_the_reason_for_the_visit(as_doctor, doctor, department, patient):
    born = years_before(timezone.localdate(), 42) - dt.timedelta(days=3)
    patient_update(actor=None, patient=patient, date_of_birth=born, sex="female")
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    type(appointment).objects.filter(pk=appointment.pk).update(reason="Cough for three weeks")

    html = panel(as_doctor, appointment)

    assert "42 years" in html
    assert "Female" in html
    assert "Cough for three weeks" in html


def test_it_says_allergies_not_recorded_when_nobody_asked(as_doctor, doctor, department, patient):
    html = panel(as_doctor, checked_in_appointment(doctor=doctor, department=department, patient=patient))
    assert "Allergies not recorded" in html
    assert "No known allergies" not in html


def test_it_says_no_known_allergies_once_recorded(as_doctor, doctor, department, patient, staff_user):
    allergy_set_no_known_allergies(actor=staff_user, patient=patient)
    html = panel(as_doctor, checked_in_appointment(doctor=doctor, department=department, patient=patient))
    assert "No known allergies" in html
    assert "Allergies not recorded" not in html


def test_it_lists_active_allergies_and_logs_their_read(as_doctor, doctor, department, patient):
    allergy = allergy_record(
        actor=doctor.user,
        patient=patient,
        substance="Penicillin",
        category="drug",
        severity="severe",
        reaction="Anaphylaxis",
    )
    allergy_record(
        actor=doctor.user,
        patient=patient,
        substance="Latex",
        category="environmental",
        severity="mild",
        status="inactive",
    )

    html = panel(as_doctor, checked_in_appointment(doctor=doctor, department=department, patient=patient))
    flush_pending()

    assert "Penicillin" in html
    assert "Anaphylaxis" in html
    assert "Latex" not in html
    assert "patient-allergies-alert" in html
    assert AuditEvent.objects.filter(
        action="record.viewed", object_type="patients.allergy", object_id=str(allergy.pk)
    ).exists()


def test_the_panel_refuses_a_conflicting_line_then_takes_the_override(as_doctor, doctor, department, patient):
    allergy_record(
        actor=doctor.user, patient=patient, substance="Penicillin", category="drug", severity="severe"
    )
    consultation = open_consultation(doctor=doctor, department=department, patient=patient)
    url = reverse("consultations:panel-prescription", args=[consultation.appointment_id])

    form_line = {f"line-{name}": value for name, value in LINE.items()}
    refused = as_doctor.post(url, form_line, **HTMX).content.decode()

    assert "Co-amoxiclav matches the recorded allergy to Penicillin (penicillins)" in refused
    assert "Allergy override reason" in refused
    assert not Prescription.objects.exists()

    taken = as_doctor.post(
        url, {**form_line, "line-allergy_override_reason": "Tolerated it last year, no rash."}, **HTMX
    )

    assert taken.status_code == 200
    assert Prescription.objects.get().items.get().medication == "Co-amoxiclav"
    event = AuditEvent.objects.get(action="prescription.allergy_override")
    assert event.data["reason"] == "Tolerated it last year, no rash."
