"""Consultations and care notes in the admin: clinical notes for superusers only, writes through services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consultations.models import CareNote, Consultation
from consultations.services import care_note_create, prescription_create
from scheduling.models import Appointment
from tests.consultations.factories import complete

from .factories import CALM_VITALS

pytestmark = pytest.mark.django_db

CONSULTATIONS = reverse("admin:consultations_consultation_changelist")
CARE_NOTES = reverse("admin:consultations_carenote_changelist")
ADD_CARE_NOTE = reverse("admin:consultations_carenote_add")


def change_url(obj) -> str:
    return reverse(f"admin:consultations_{obj._meta.model_name}_change", args=[obj.pk])


def inline_management(consultation) -> dict:
    data = {}
    for prefix, count in (
        ("prescriptions", consultation.prescriptions.count()),
        ("results", consultation.results.count()),
        ("addenda", consultation.addenda.count()),
    ):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": str(count),
                f"{prefix}-INITIAL_FORMS": str(count),
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
        for i, pk in enumerate(getattr(consultation, prefix).values_list("pk", flat=True)):
            data[f"{prefix}-{i}-id"] = str(pk)
            data[f"{prefix}-{i}-consultation"] = str(consultation.pk)
    return data


def form_data(consultation, **changes) -> dict:
    data = {
        "chief_complaint": consultation.chief_complaint,
        "history": "",
        "examination": "",
        "assessment": "",
        "diagnosis_code": "",
        "plan": "",
        "follow_up_date": "",
        "systolic_bp": "",
        "diastolic_bp": "",
        "pulse": "",
        "respiratory_rate": "",
        "temperature": "",
        "spo2": "",
        "weight_kg": "",
        "height_cm": "",
        "on_supplemental_oxygen": "unknown",
        "consciousness": "",
        **inline_management(consultation),
    }
    data.update(changes)
    return data


def test_superusers_list_and_open_consultations(client, superuser, doctor, consultation):
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[{"medication": "Aspirin", "dose": "75 mg", "frequency": "daily", "quantity": 28}],
    )
    client.force_login(superuser)

    listing = client.get(CONSULTATIONS)
    page = client.get(change_url(consultation))

    assert listing.status_code == 200
    assert [c.pk for c in listing.context["cl"].result_list] == [consultation.pk]
    assert page.status_code == 200
    html = page.content.decode()
    assert "Incomplete: still to record" in html
    assert "Aspirin" in html  # the prescription inline
    assert 'name="systolic_bp"' in html  # a draft is editable


def test_editing_a_draft_goes_through_the_service(client, superuser, consultation):
    client.force_login(superuser)
    vitals = {k: str(v) for k, v in CALM_VITALS.items()}
    vitals["on_supplemental_oxygen"] = "true"
    vitals["systolic_bp"] = "95"

    response = client.post(change_url(consultation), form_data(consultation, **vitals, diagnosis_code="i10"))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    consultation.refresh_from_db()
    assert consultation.diagnosis_code == "I10"
    assert (consultation.news2_total, consultation.news2_band) == (4, "low")
    assert consultation.vitals_recorded_at is not None


def test_an_implausible_reading_is_shown_beside_the_field(client, superuser, consultation):
    client.force_login(superuser)

    response = client.post(change_url(consultation), form_data(consultation, pulse="400"))

    assert response.status_code == 200
    assert "Pulse must be between 20 and 300" in str(response.context["adminform"].form.errors["pulse"])
    consultation.refresh_from_db()
    assert consultation.pulse is None


def test_a_completed_consultation_is_read_only_in_the_admin(client, superuser, doctor, consultation):
    completed = complete(consultation, actor=doctor.user)
    client.force_login(superuser)

    page = client.get(change_url(consultation))
    response = client.post(change_url(consultation), form_data(consultation, plan="Rewritten"))

    assert page.status_code == 200
    assert 'name="plan"' not in page.content.decode()
    assert response.status_code == 403
    consultation.refresh_from_db()
    assert consultation.plan == completed.plan != "Rewritten"


def test_nobody_adds_consultations_in_the_admin(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:consultations_consultation_add")).status_code == 403


@pytest.mark.parametrize("role", ["staff_user", "admin_user"])
def test_staff_and_admins_do_not_see_consultations(request, client, consultation, role):
    client.force_login(request.getfixturevalue(role))

    assert client.get(CONSULTATIONS).status_code == 403
    # Outside their scope altogether: the same answer as a row that does not exist.
    assert client.get(change_url(consultation)).status_code == 404
    index = client.get(reverse("admin:index")).content.decode()
    assert CONSULTATIONS not in index
    assert CARE_NOTES in index


def test_staff_add_care_notes_through_the_service(client, staff_user, patient, clinic):
    client.force_login(staff_user)

    response = client.post(
        ADD_CARE_NOTE,
        {"patient": patient.pk, "clinic": clinic.pk, "category": "hygiene", "text": "Bed bath given."},
    )

    assert response.status_code == 302
    note = CareNote.objects.get()
    assert (note.author, note.organization_id, note.text) == (
        staff_user,
        clinic.organization_id,
        "Bed bath given.",
    )
    assert client.get(CARE_NOTES).status_code == 200
    assert client.get(change_url(note)).status_code == 200


def test_staff_see_only_their_clinics_care_notes(
    client, staff_user, other_clinic_staff, admin_user, patient, clinic
):
    note = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="incident", text="Fell."
    )

    client.force_login(other_clinic_staff)
    assert [n.pk for n in client.get(CARE_NOTES).context["cl"].result_list] == []
    assert client.get(change_url(note)).status_code == 404

    client.force_login(admin_user)
    assert [n.pk for n in client.get(CARE_NOTES).context["cl"].result_list] == [note.pk]
    assert client.get(ADD_CARE_NOTE).status_code == 403  # admins read care notes; staff write them


def test_staff_cannot_add_a_note_at_another_clinic(client, staff_user, patient, other_clinic):
    client.force_login(staff_user)
    response = client.post(
        ADD_CARE_NOTE, {"patient": patient.pk, "clinic": other_clinic.pk, "category": "hygiene", "text": "x"}
    )
    assert response.status_code == 200
    assert "clinic" in response.context["adminform"].form.errors
    assert not CareNote.objects.exists()


def test_doctors_do_not_use_the_admin(client, doctor, consultation):
    doctor.user.is_staff = True
    doctor.user.save(update_fields=["is_staff"])
    client.force_login(doctor.user)
    assert client.get(CONSULTATIONS).status_code in (302, 403)
    assert Appointment.objects.filter(pk=consultation.appointment_id).exists()
    assert Consultation.objects.count() == 1
