"""One consultation record: its version (a stale write is refused, writing nothing), the minimum record a
consultation is completed with, completion saving the final values, and appointments completed only
through their consultation, whatever the door."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consultations.models import Consultation, ConsultationStatus
from consultations.services import (
    consultation_complete,
    consultation_update,
    prescription_create,
)
from opd.core.errors import Conflict, ValidationFailed
from opd.core.models import AuditEvent
from scheduling.models import Appointment, AppointmentStatus, QueueVersion
from scheduling.services import appointment_complete, appointment_start
from tests.conftest import assert_error

from .factories import CALM_VITALS, MINIMUM_NOTES, checked_in_appointment

pytestmark = pytest.mark.django_db

LINE = {"medication": "Salbutamol", "dose": "2 puffs", "frequency": "as needed", "quantity": 1}


def fresh(consultation: Consultation) -> Consultation:
    return Consultation.objects.get(pk=consultation.pk)


# The version


def test_every_write_to_the_draft_moves_the_version_on(doctor, consultation):
    assert consultation.version == 1

    consultation = consultation_update(actor=doctor.user, consultation=consultation, plan="Rest")
    assert fresh(consultation).version == 2
    consultation_update(actor=doctor.user, consultation=consultation, plan="Rest")  # no change
    assert fresh(consultation).version == 2
    consultation_update(actor=doctor.user, consultation=consultation, **CALM_VITALS)
    assert fresh(consultation).version == 3
    prescription_create(actor=doctor.user, consultation=consultation, items=[LINE])
    assert fresh(consultation).version == 4


def test_a_stale_version_is_refused_naming_what_changed_and_writes_nothing(doctor, consultation):
    # Tab A and tab B both loaded version 1; A saves the plan and a prescription line.
    consultation_update(actor=doctor.user, consultation=consultation, expected_version=1, plan="Rest")
    prescription_create(actor=doctor.user, consultation=consultation, items=[LINE], expected_version=2)
    audit_rows = AuditEvent.objects.count()

    with pytest.raises(Conflict) as refused:
        consultation_update(
            actor=doctor.user, consultation=consultation, expected_version=1, plan="Admit", pulse=90
        )

    assert refused.value.code == "version_conflict"
    assert "plan, prescription" in refused.value.message
    assert "now version 3" in refused.value.message
    assert refused.value.fields == {"version": ["The current version is 3; you sent 1."]}
    row = fresh(consultation)
    assert (row.plan, row.pulse, row.version) == ("Rest", None, 3)
    assert AuditEvent.objects.count() == audit_rows
    with pytest.raises(Conflict, match="version"):
        prescription_create(actor=doctor.user, consultation=consultation, items=[LINE], expected_version=2)
    assert row.prescriptions.count() == 1


def test_a_writer_that_sends_no_version_still_writes(doctor, consultation):
    consultation_update(actor=doctor.user, consultation=consultation, plan="Rest")
    consultation_update(actor=doctor.user, consultation=consultation, plan="Admit")
    assert fresh(consultation).plan == "Admit"


# The minimum record


def test_completing_an_empty_record_is_refused_naming_each_missing_part(doctor, consultation):
    with pytest.raises(ValidationFailed) as refused:
        consultation_complete(actor=doctor.user, consultation=consultation, chief_complaint="Cough")

    assert refused.value.code == "record_incomplete"
    assert set(refused.value.fields) == {"vitals", "assessment", "plan"}
    assert "why they were not taken" in refused.value.fields["vitals"][0]
    row = fresh(consultation)
    assert (row.status, row.chief_complaint, row.version) == (ConsultationStatus.DRAFT, "", 1)
    assert Appointment.objects.get(pk=row.appointment_id).status == AppointmentStatus.IN_CONSULTATION


def test_partial_vitals_are_not_enough(doctor, consultation):
    consultation_update(actor=doctor.user, consultation=consultation, pulse=80, **MINIMUM_NOTES)

    with pytest.raises(ValidationFailed) as refused:
        consultation_complete(actor=doctor.user, consultation=consultation)

    assert set(refused.value.fields) == {"vitals"}
    assert "respiratory_rate" in refused.value.fields["vitals"][0]


def test_a_reason_vitals_were_not_taken_and_a_diagnosis_code_make_a_minimum_record(doctor, consultation):
    done = consultation_complete(
        actor=doctor.user,
        consultation=consultation,
        vitals_not_taken_reason="  Video consultation  ",
        diagnosis_code="j45",
        plan="Inhaler",
    )

    row = fresh(done)
    assert row.status == ConsultationStatus.COMPLETED
    assert (row.vitals_not_taken_reason, row.diagnosis_code, row.news2_total) == (
        "Video consultation",
        "J45",
        None,
    )


def test_completing_saves_the_final_values_with_the_completion(doctor, consultation):
    consultation_update(actor=doctor.user, consultation=consultation, plan="Old plan", **CALM_VITALS)

    done = consultation_complete(
        actor=doctor.user,
        consultation=consultation,
        expected_version=2,
        assessment="Asthma",
        plan="New plan",
        pulse=95,
    )

    row = fresh(done)
    assert (row.status, row.plan, row.assessment, row.pulse) == ("completed", "New plan", "Asthma", 95)
    assert row.news2_total == 1  # the pulse of 95 scores 1: NEWS2 recomputed with the final values
    assert row.version == 4  # the final values, then the completion
    assert Appointment.objects.get(pk=row.appointment_id).status == AppointmentStatus.COMPLETED


def test_completing_from_a_stale_copy_is_refused_and_writes_nothing(doctor, consultation):
    consultation_update(actor=doctor.user, consultation=consultation, plan="Theirs", **CALM_VITALS)

    with pytest.raises(Conflict, match="version"):
        consultation_complete(
            actor=doctor.user, consultation=consultation, expected_version=1, assessment="Mine", plan="Mine"
        )

    row = fresh(consultation)
    assert (row.status, row.plan, row.assessment) == (ConsultationStatus.DRAFT, "Theirs", "")


# Completing an appointment: only through its consultation


def test_an_appointment_is_not_completed_without_its_consultation(doctor, department, patient):
    appointment = appointment_start(
        actor=doctor.user,
        appointment=checked_in_appointment(doctor=doctor, department=department, patient=patient),
    )
    versions = list(QueueVersion.objects.values_list("queue", "last_value"))

    with pytest.raises(Conflict) as refused:
        appointment_complete(actor=doctor.user, appointment=appointment)

    assert refused.value.code == "consultation_required"
    assert "open the consultation" in refused.value.message
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.IN_CONSULTATION
    assert list(QueueVersion.objects.values_list("queue", "last_value")) == versions


def test_a_draft_consultation_is_named_when_completing_its_appointment_directly(doctor, consultation):
    with pytest.raises(Conflict) as refused:
        appointment_complete(actor=doctor.user, appointment=consultation.appointment)
    assert f"consultation #{consultation.pk}" in refused.value.message
    assert fresh(consultation).status == ConsultationStatus.DRAFT


# The API


def detail(consultation: Consultation) -> str:
    return f"/api/v1/consultations/{consultation.pk}/"


def test_the_api_shows_the_version_and_refuses_a_stale_edit(api_as, doctor, consultation):
    client = api_as(doctor.user)
    assert client.get(detail(consultation)).json()["version"] == 1

    saved = client.patch(detail(consultation), {"plan": "Rest", "version": 1}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2
    stale = client.patch(detail(consultation), {"plan": "Admit", "version": 1}, format="json")

    error = assert_error(stale, 409, "version_conflict", {"version"})
    assert "changed: plan" in error["message"]
    assert fresh(consultation).plan == "Rest"
    # An older client that sends no version still writes.
    assert client.patch(detail(consultation), {"plan": "Admit"}, format="json").json()["version"] == 3


def test_the_api_names_each_missing_part_when_completing(api_as, doctor, consultation):
    response = api_as(doctor.user).post(f"{detail(consultation)}complete/", {"plan": "Rest"}, format="json")

    assert_error(response, 400, "record_incomplete", {"vitals", "assessment"})
    assert fresh(consultation).plan == ""


def test_the_vitals_not_taken_reason_is_in_the_api(api_as, doctor, consultation):
    client = api_as(doctor.user)
    response = client.patch(detail(consultation), {"vitals_not_taken_reason": "Declined"}, format="json")
    assert response.json()["vitals_not_taken_reason"] == "Declined"


def test_the_appointments_api_refuses_to_complete_without_the_consultation(api_as, doctor, consultation):
    response = api_as(doctor.user).post(f"/api/v1/appointments/{consultation.appointment_id}/complete/")

    error = assert_error(response, 409, "consultation_required")
    assert f"#{consultation.pk}" in error["message"]
    assert Appointment.objects.get(pk=consultation.appointment_id).status == AppointmentStatus.IN_CONSULTATION


# The dashboard and the admin


def test_the_dashboards_complete_button_is_refused_and_points_to_the_consultation(
    client, doctor, consultation
):
    client.force_login(doctor.user)
    action = reverse("queue:appointment-action", args=[consultation.appointment_id, "complete"])

    response = client.post(action, follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "consultations:panel", args=[consultation.appointment_id]
    )
    assert f"complete consultation #{consultation.pk}" in response.content.decode()
    assert Appointment.objects.get(pk=consultation.appointment_id).status == AppointmentStatus.IN_CONSULTATION


def test_the_top_card_offers_to_continue_the_consultation_not_to_complete_it(client, doctor, consultation):
    client.force_login(doctor.user)

    html = client.get(reverse("queue:dashboard")).content.decode()

    assert reverse("queue:appointment-action", args=[consultation.appointment_id, "complete"]) not in html
    assert "Continue the consultation" in html


def test_the_admin_has_no_way_to_complete_an_appointment(client, superuser, consultation):
    client.force_login(superuser)
    url = reverse("admin:scheduling_appointment_change", args=[consultation.appointment_id])

    page = client.get(url).content.decode()
    changelist = client.get(reverse("admin:scheduling_appointment_changelist")).content.decode()

    assert 'name="status"' not in page  # the status is read-only there
    assert "complete" not in changelist.split('name="action"', 1)[-1].split("</select>", 1)[0].lower()
    assert Appointment.objects.get(pk=consultation.appointment_id).status == AppointmentStatus.IN_CONSULTATION
