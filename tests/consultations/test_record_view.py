"""The dashboard's done list opens the completed consultation read-only, with its addenda, and an
addendum is added there; the dashboard also lists tomorrow's bookings; the panel's header shows the
active problems and links to the safety-data page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from consultations.services import addendum_create
from opd.core.models import AuditEvent
from patients.services import problem_add, problem_resolve
from tests.factories import SlotFactory

from .factories import CALM_VITALS, completed_consultation, open_consultation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def record_url(consultation) -> str:
    return reverse("consultations:record", args=[consultation.appointment_id])


@pytest.fixture
def done(doctor, department, patient):
    return completed_consultation(
        doctor=doctor,
        department=department,
        patient=patient,
        assessment="Viral pharyngitis",
        plan="Fluids, rest",
        **CALM_VITALS,
    )


def test_the_done_list_links_a_completed_visit_to_its_record(client, doctor, done):
    client.force_login(doctor.user)
    html = client.get(reverse("queue:dashboard")).content.decode()
    assert f'href="{record_url(done)}"' in html


def test_the_record_is_read_only_with_its_addenda_and_logs_the_read(client, doctor, done):
    addendum_create(actor=doctor.user, consultation=done, text="Throat swab negative.")
    client.force_login(doctor.user)

    response = client.get(record_url(done))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Viral pharyngitis" in html
    assert "Fluids, rest" in html
    assert "Throat swab negative." in html
    assert "completed and read-only" in html
    assert "<textarea" in html  # the addendum's, and no other: the record itself is not a form
    assert 'name="assessment"' not in html
    assert AuditEvent.objects.filter(
        action="record.viewed", object_type="consultations.consultation", object_id=str(done.pk)
    ).exists()


def test_an_addendum_is_added_from_the_record(client, doctor, done):
    client.force_login(doctor.user)

    response = client.post(
        reverse("consultations:record-addendum", args=[done.appointment_id]), {"text": "Phoned: better."}
    )

    assert response.status_code == 302
    assert [a.text for a in done.addenda.all()] == ["Phoned: better."]
    assert AuditEvent.objects.filter(action="consultation.addendum").exists()
    assert "Phoned: better." in client.get(record_url(done)).content.decode()


def test_an_empty_addendum_is_refused_beside_the_field(client, doctor, done):
    client.force_login(doctor.user)
    response = client.post(
        reverse("consultations:record-addendum", args=[done.appointment_id]), {"text": "  "}
    )
    assert response.status_code == 400
    assert 'id="id_text_error"' in response.content.decode()
    assert not done.addenda.exists()


def test_other_people_are_refused(client, colleague, staff_user, other_org_doctor, done):
    client.force_login(colleague.user)
    assert client.get(record_url(done)).status_code == 403
    assert (
        client.post(
            reverse("consultations:record-addendum", args=[done.appointment_id]), {"text": "x"}
        ).status_code
        == 403
    )
    client.force_login(other_org_doctor.user)
    assert client.get(record_url(done)).status_code == 404
    assert not done.addenda.exists()


def test_a_draft_opens_in_the_panel_instead(client, doctor, department, patient):
    draft = open_consultation(doctor=doctor, department=department, patient=patient)
    client.force_login(doctor.user)
    response = client.get(record_url(draft))
    assert response.status_code == 302
    assert response["Location"] == reverse("consultations:panel", args=[draft.appointment_id])


def test_the_dashboard_lists_tomorrows_bookings_in_clinic_time(
    client, doctor, department, patient, other_patient, book
):
    clinic = department.clinic
    tomorrow = timezone.localdate(timezone=clinic.tz) + dt.timedelta(days=1)
    start = dt.datetime.combine(tomorrow, dt.time(9, 30), tzinfo=clinic.tz)
    book(patient, SlotFactory(doctor=doctor, department=department, start=start))
    book(other_patient, SlotFactory(doctor=doctor, department=department, start=start + dt.timedelta(days=1)))
    client.force_login(doctor.user)

    html = client.get(reverse("queue:dashboard")).content.decode()

    section = html.split('id="tomorrow-title"')[1]
    assert patient.full_name in section
    assert other_patient.full_name not in section  # the day after tomorrow
    assert "09:30" in section


def test_the_panel_header_shows_active_problems_and_links_the_safety_page(
    client, doctor, department, patient
):
    draft = open_consultation(doctor=doctor, department=department, patient=patient)
    problem_add(actor=doctor.user, patient=patient, description="Hypertension", icd10_code="I10")
    gone = problem_add(actor=doctor.user, patient=patient, description="Ankle sprain")
    problem_resolve(actor=doctor.user, problem=gone)
    client.force_login(doctor.user)

    html = client.get(reverse("consultations:panel", args=[draft.appointment_id])).content.decode()

    header = html.split("<header>")[1].split("</header>")[0]
    assert "Hypertension" in header
    assert "I10" in header
    assert "Ankle sprain" not in header
    assert reverse("patients:safety", args=[patient.pk]) in header
