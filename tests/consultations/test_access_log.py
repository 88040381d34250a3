"""The access log of reads (issue #15): every door that shows a clinical record writes who, what, which
patient, where from; a list writes one row per record shown in one INSERT."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consultations.services import (
    care_note_create,
    prescription_create,
    result_create,
)
from opd.core.models import AuditEvent

from .factories import completed_consultation

pytestmark = pytest.mark.django_db

BROWSER = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Firefox/140 (ward PC 3)"}
AMOXICILLIN = {
    "medication": "Amoxicillin",
    "dose": "1 capsule",
    "frequency": "three times a day",
    "quantity": 21,
}
PDF = b"%PDF-1.4 a tiny report"


def reads(after: int = 0, **filters) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action__startswith="record.", pk__gt=after, **filters).order_by("pk")
    )


def last_event() -> int:
    # Audit rows are append-only (never deleted, even in a test): count what comes after this one.
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def inserts_into_audit(queries) -> int:
    return sum(
        1 for q in queries if q["sql"].startswith("INSERT") and "core_auditevent" in q["sql"].split("(")[0]
    )


def test_it_logs_an_api_read_with_who_what_which_patient_and_from_where(
    api_as, doctor, consultation, patient
):
    response = api_as(doctor.user).get(f"/api/v1/consultations/{consultation.pk}/", **BROWSER)

    assert response.status_code == 200
    [row] = reads()
    assert row.action == "record.viewed"
    assert (row.object_type, row.object_id) == ("consultations.consultation", str(consultation.pk))
    assert row.actor == doctor.user
    assert row.actor_role == "doctor"
    assert row.patient_id == patient.pk
    assert row.clinic_id == consultation.clinic_id
    assert row.organization_id == consultation.organization_id
    assert row.source_ip == "203.0.113.7"
    assert row.user_agent == "Firefox/140 (ward PC 3)"
    assert row.reason == ""  # the appointment's doctor: a care relationship, no reason asked


def test_a_list_logs_one_row_per_record_shown_in_one_insert(
    api_as, doctor, department, patient, other_patient
):
    for who in (patient, other_patient, patient):
        completed_consultation(doctor=doctor, department=department, patient=who)
    client = api_as(doctor.user)
    client.get("/api/v1/consultations/")  # warm up
    before = last_event()

    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/consultations/?page_size=2", **BROWSER)

    shown = [row["id"] for row in response.json()["results"]]
    assert len(shown) == 2
    assert sorted(int(r.object_id) for r in reads(before)) == sorted(shown)  # the page, not the result set
    assert {r.source_ip for r in reads(before)} == {"203.0.113.7"}
    assert inserts_into_audit(captured.captured_queries) == 1


def test_a_list_of_many_records_still_costs_one_insert(api_as, doctor, consultation):
    for n in range(5):
        prescription_create(
            actor=doctor.user, consultation=consultation, items=[{**AMOXICILLIN, "quantity": n + 1}]
        )
    with CaptureQueriesContext(connection) as captured:
        response = api_as(doctor.user).get("/api/v1/prescriptions/")
    assert response.json()["count"] == 5
    assert len(reads(object_type="consultations.prescription")) == 5
    assert inserts_into_audit(captured.captured_queries) == 1


def test_it_logs_a_download_of_an_attachment(api_as, doctor, consultation, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    result = result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="Chest X-ray",
        attachment=SimpleUploadedFile("xray.pdf", PDF, content_type="application/pdf"),
    )

    response = api_as(doctor.user).get(f"/api/v1/results/{result.pk}/attachment/", **BROWSER)

    assert b"".join(response.streaming_content) == PDF
    [row] = reads(action="record.downloaded")
    assert (row.object_type, row.object_id) == ("consultations.result", str(result.pk))
    assert row.user_agent == "Firefox/140 (ward PC 3)"


def test_it_logs_each_entry_of_the_history_shown(api_as, doctor, consultation, patient):
    prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])

    body = api_as(doctor.user).get(f"/api/v1/patients/{patient.pk}/history/", **BROWSER).json()

    logged = {(r.object_type.split(".")[1], int(r.object_id)) for r in reads(patient_id=patient.pk)}
    assert logged == {(e["kind"].replace("_", ""), e["id"]) for e in body["results"]}
    assert {r.data["via"] for r in reads()} == {"history"}


def test_it_logs_the_printable_prescription_as_printed(client, doctor, consultation, patient):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    client.force_login(doctor.user)

    response = client.get(reverse("consultations:prescription-print", args=[prescription.pk]), **BROWSER)

    assert response.status_code == 200
    [row] = reads(action="record.printed")
    assert row.object_id == str(prescription.pk)
    assert row.patient_id == patient.pk
    assert row.source_ip == "203.0.113.7"


def test_it_logs_the_consultation_panel_page(client, doctor, consultation):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    client.force_login(doctor.user)

    response = client.get(reverse("consultations:panel", args=[consultation.appointment_id]), **BROWSER)

    assert response.status_code == 200
    assert {(r.object_type, r.object_id) for r in reads()} == {
        ("consultations.consultation", str(consultation.pk)),
        ("consultations.prescription", str(prescription.pk)),
    }


def test_it_logs_the_patients_own_reads_as_the_patient(client, doctor, department, patient):
    consultation = completed_consultation(doctor=doctor, department=department, patient=patient)
    client.force_login(patient.user)

    response = client.get(reverse("portal:record"), **BROWSER)

    assert response.status_code == 200
    [row] = reads()
    assert row.object_id == str(consultation.pk)
    assert (row.actor, row.actor_role) == (patient.user, "patient")
    assert row.user_agent == "Firefox/140 (ward PC 3)"


def test_it_logs_admin_change_views_of_clinical_rows(
    client, superuser, admin_user, staff_user, doctor, consultation, patient, clinic
):
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    note = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="observation", text="Pale."
    )

    client.force_login(superuser)
    url = reverse("admin:consultations_consultation_change", args=[consultation.pk])
    assert client.get(url, **BROWSER).status_code == 200
    client.force_login(admin_user)
    assert (
        client.get(reverse("admin:consultations_carenote_change", args=[note.pk]), **BROWSER).status_code
        == 200
    )

    by_superuser = {(r.object_type, r.object_id) for r in reads(actor=superuser)}
    assert by_superuser == {
        ("consultations.consultation", str(consultation.pk)),
        ("consultations.prescription", str(prescription.pk)),  # shown in its inline
    }
    [note_read] = reads(actor=admin_user)
    assert (note_read.object_type, note_read.actor_role, note_read.data["via"]) == (
        "consultations.carenote",
        "admin",
        "admin",
    )
    assert note_read.source_ip == "203.0.113.7"


def test_a_refused_read_logs_nothing(api_as, staff_user, consultation):
    assert api_as(staff_user).get(f"/api/v1/consultations/{consultation.pk}/").status_code == 403
    assert reads() == []


def test_the_doctors_queue_snapshot_over_http_and_the_page_are_logged_once_each(
    api_as, client, doctor, department, patient
):
    from tests.consultations.factories import checked_in_appointment

    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    api_as(doctor.user).get(f"/api/v1/doctors/{doctor.pk}/queue/", **BROWSER)
    client.force_login(doctor.user)
    client.get(reverse("queue:dashboard"), **BROWSER)

    rows = list(AuditEvent.objects.filter(action="queue.viewed").order_by("pk"))
    assert [r.data["via"] for r in rows] == ["api", "page"]
    for row in rows:
        assert (row.object_type, row.object_id) == ("scheduling.queue", f"doctor:{doctor.pk}")
        assert row.data["patients"] == [patient.pk]
        assert row.data["appointments"] == [appointment.pk]
        assert row.source_ip == "203.0.113.7"
