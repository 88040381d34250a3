"""My record (read-only, through the consultations app's selectors) and my profile (contact details
through patients.services.patient_update, message preferences through notifications' service)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from consultations.services import addendum_create, prescription_create, result_create
from notifications.models import ContactPreference
from opd.core.crypto import blind_index
from opd.core.models import AuditEvent
from patients.models import Patient
from tests.consultations.factories import complete

from .conftest import visit_in_consultation

pytestmark = pytest.mark.django_db

PROFILE = "/portal/profile/"
RECORD = "/portal/record/"


def contact(**overrides) -> dict:
    data = {
        "section": "contact",
        "phone": "+44 7700 900123",
        "email": "ada@example.org",
        "address": "12 St James's Square\nLondon",
        "emergency_contact_name": "Mary Somerville",
        "emergency_contact_phone": "+44 7700 900456",
    }
    data.update(overrides)
    return data


def preferences(**overrides) -> dict:
    data = {
        "section": "preferences",
        "prefs-email_enabled": "on",
        "prefs-in_app_enabled": "on",
        "prefs-preferred_channel": "email",
    }
    data.update(overrides)
    return data


@pytest.fixture
def completed(doctor, department, patient):
    consultation = visit_in_consultation(
        doctor=doctor,
        department=department,
        patient=patient,
        chief_complaint="Cough for two weeks",
        assessment="Acute bronchitis",
        plan="Rest, fluids, return if breathless",
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
            }
        ],
    )
    result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="CRP",
        value="48",
        unit="mg/L",
        reference_low=Decimal(0),
        reference_high=Decimal(5),
    )
    consultation = complete(consultation, actor=doctor.user)
    addendum_create(actor=doctor.user, consultation=consultation, text="Chest X-ray normal.")
    return consultation


# My record


def test_it_shows_my_completed_consultations_with_prescriptions_and_results(as_patient, completed):
    response = as_patient.get(RECORD)

    assert [c.pk for c in response.context["page"]] == [completed.pk]
    html = response.content.decode()
    for text in (
        "Cough for two weeks",
        "Acute bronchitis",
        "Rest, fluids, return if breathless",
        "Amoxicillin 500 mg",
        "three times a day",
        "CRP",
        "48 mg/L",
        "outside the range",
        "0-5",
        "Chest X-ray normal.",
        "Europe/London",
        reverse("consultations:prescription-print", args=[completed.prescriptions.get().pk]),
    ):
        assert text in html, text


def test_it_hides_drafts_and_other_patients_records(as_patient, patient, other_patient, doctor, department):
    visit_in_consultation(doctor=doctor, department=department, patient=patient, assessment="Draft thoughts")
    theirs = visit_in_consultation(
        doctor=doctor, department=department, patient=other_patient, assessment="Someone else's"
    )
    complete(theirs, actor=doctor.user)

    response = as_patient.get(RECORD)

    assert list(response.context["page"]) == []
    html = response.content.decode()
    assert "Draft thoughts" not in html
    assert "Someone else's" not in html
    assert "Nothing in your record yet" in html


def test_it_reads_the_record_in_a_fixed_number_of_queries(
    as_patient, patient, doctor, department, django_assert_max_num_queries
):
    for n in range(4):
        consultation = visit_in_consultation(
            doctor=doctor, department=department, patient=patient, assessment=f"Visit {n}"
        )
        prescription_create(
            actor=doctor.user,
            consultation=consultation,
            items=[
                {"medication": "Paracetamol", "dose": "1 g", "frequency": "four times a day", "quantity": 8}
            ],
        )
        result_create(actor=doctor.user, consultation=consultation, test_name="Hb", value="13", unit="g/dL")
        complete(consultation, actor=doctor.user)

    with django_assert_max_num_queries(16):
        response = as_patient.get(RECORD)

    assert len(response.context["page"]) == 4


def test_my_record_has_no_forms_to_write_with(as_patient, completed):
    main = as_patient.get(RECORD).content.decode().split('<main id="main"')[1]

    assert "<form" not in main


# My profile: contact details


def test_it_shows_my_contact_details_in_the_profile_form(as_patient, patient):
    response = as_patient.get(PROFILE)

    assert response.context["form"]["phone"].value() == patient.phone
    html = response.content.decode()
    for field in ("phone", "email", "address", "emergency_contact_name", "emergency_contact_phone"):
        assert f'<label for="id_{field}">' in html


def test_it_saves_my_contact_details_through_the_service(as_patient, patient):
    response = as_patient.post(PROFILE, contact())

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.phone, patient.phone_index, patient.emergency_contact_name) == (
        "+447700900123",
        blind_index("phone", "447700900123"),
        "Mary Somerville",
    )
    assert AuditEvent.objects.filter(action="patient.updated", object_id=str(patient.pk)).exists()
    assert "contact details are saved" in as_patient.get(PROFILE).content.decode()


def test_it_shows_a_bad_email_beside_the_field_and_saves_nothing(as_patient, patient):
    before = Patient.objects.values().get(pk=patient.pk)

    response = as_patient.post(PROFILE, contact(email="not-an-email"))

    assert response.status_code == 400
    assert 'id="id_email_error"' in response.content.decode()
    assert Patient.objects.values().get(pk=patient.pk) == before


def test_it_cannot_change_my_name_or_date_of_birth(as_patient, patient):
    as_patient.post(PROFILE, {**contact(), "first_name": "Augusta", "date_of_birth": "1900-01-01"})

    patient.refresh_from_db()
    assert (patient.first_name, str(patient.date_of_birth)) == ("Ada", "1980-05-17")


def test_the_profile_links_to_changing_the_password(as_patient):
    assert reverse("password_change") in as_patient.get(PROFILE).content.decode()


# My profile: message preferences


def test_it_starts_with_every_channel_on(as_patient):
    form = as_patient.get(PROFILE).context["preferences_form"]

    assert [form[name].value() for name in ("email_enabled", "sms_enabled", "in_app_enabled")] == [True] * 3


def test_it_saves_my_message_preferences_through_the_service(as_patient, patient):
    response = as_patient.post(PROFILE, preferences())

    assert response.status_code == 302
    pref = ContactPreference.objects.get(patient=patient)
    assert (pref.email_enabled, pref.sms_enabled, pref.in_app_enabled, pref.preferred_channel) == (
        True,
        False,
        True,
        "email",
    )
    assert AuditEvent.objects.filter(action="notifications.contact_preference_set").exists()
    page = as_patient.get(PROFILE)
    assert "message preferences are saved" in page.content.decode()
    assert page.context["preferences_form"]["sms_enabled"].value() is False


def test_it_refuses_a_preferred_channel_that_is_switched_off_beside_the_field(as_patient, patient):
    response = as_patient.post(PROFILE, preferences(**{"prefs-preferred_channel": "sms"}))

    assert response.status_code == 400
    assert response.context["preferences_form"].errors["preferred_channel"] == ["SMS is switched off."]
    assert 'id="id_prefs-preferred_channel_error"' in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_saving_one_section_leaves_the_other_alone(as_patient, patient):
    phone = patient.phone

    as_patient.post(PROFILE, preferences())

    patient.refresh_from_db()
    assert patient.phone == phone
