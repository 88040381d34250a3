"""Archived clinical content follows the live record's rules (issue #15): organization admins no longer
read it in the admin; clinicians read it under the care relationship or a stated reason; reads are logged."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from archive.models import ArchivedRecord
from archive.services import archival_run
from consultations.services import prescription_create
from opd.core.models import AuditEvent
from scheduling.models import Appointment
from tests.conftest import BREAK_GLASS, assert_error
from tests.consultations.factories import open_consultation

pytestmark = pytest.mark.django_db

SIX_YEARS = dt.timedelta(days=6 * 365)


@pytest.fixture
def archived(doctor, department, patient):
    """A consultation with a prescription, six years old, moved to the archive with its appointment."""
    consultation = open_consultation(
        doctor=doctor, department=department, patient=patient, chief_complaint="Chest pain on exertion"
    )
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[{"medication": "Aspirin", "dose": "75 mg", "frequency": "daily", "quantity": 28}],
    )
    appointment = consultation.appointment
    Appointment.objects.filter(pk=appointment.pk).update(
        start=appointment.start - SIX_YEARS, end=appointment.end - SIX_YEARS
    )
    archival_run()
    return {
        "consultation": ArchivedRecord.objects.get(model="consultations.consultation"),
        "appointment": ArchivedRecord.objects.get(model="scheduling.appointment"),
    }


def change(record) -> str:
    return reverse("admin:archive_archivedrecord_change", args=[record.pk])


def test_an_organization_admin_can_no_longer_open_archived_clinical_content(client, admin_user, archived):
    client.force_login(admin_user)

    refused = client.get(change(archived["consultation"]))

    assert refused.status_code == 403
    assert b"Chest pain" not in refused.content
    # The index (what was archived with which appointment) and non-clinical rows stay theirs.
    listing = client.get(reverse("admin:archive_archivedrecord_changelist"))
    assert listing.status_code == 200
    assert b"Chest pain" not in listing.content
    assert client.get(change(archived["appointment"])).status_code == 200
    assert not AuditEvent.objects.filter(action__startswith="record.").exists()


def test_a_superuser_opening_archived_clinical_content_is_logged(client, superuser, archived, patient):
    client.force_login(superuser)

    response = client.get(change(archived["consultation"]), REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Edge")

    assert response.status_code == 200
    assert b"Chest pain" in response.content
    row = AuditEvent.objects.get(action="record.viewed")
    assert (row.object_type, row.object_id) == ("archive.archivedrecord", str(archived["consultation"].pk))
    assert row.patient_id == patient.pk
    assert (row.source_ip, row.user_agent) == ("192.0.2.10", "Edge")


def test_a_doctor_reads_archived_content_with_a_reason_and_it_is_logged(api_as, doctor, archived, patient):
    url = f"/api/v1/patients/{patient.pk}/archive/"
    client = api_as(doctor.user)

    # Six years ago is outside the care relationship, even for the doctor who wrote it.
    assert_error(client.get(url), 403, "reason_required", field="reason")
    body = client.get(url, {"reason": BREAK_GLASS}).json()

    models = sorted(row["model"] for row in body["results"])
    assert models == [
        "consultations.consultation",
        "consultations.prescription",
        "consultations.prescriptionitem",
    ]
    logged = AuditEvent.objects.filter(action="record.viewed", data__via="archive")
    assert logged.count() == 3
    assert {row.reason for row in logged} == {BREAK_GLASS}
    assert {row.patient_id for row in logged} == {patient.pk}
    assert AuditEvent.objects.filter(action="record.break_glass").count() == 1


def test_admins_staff_and_patients_are_refused_the_archive_api(
    api_as, admin_user, staff_user, patient, archived
):
    url = f"/api/v1/patients/{patient.pk}/archive/"
    for user in (admin_user, staff_user, patient.user):
        assert_error(api_as(user).get(url), 403, "permission_denied")


def test_another_organizations_doctor_gets_a_404(api_as, other_org_doctor, patient, archived):
    url = f"/api/v1/patients/{patient.pk}/archive/"
    assert_error(api_as(other_org_doctor.user).get(url, {"reason": BREAK_GLASS}), 404, "not_found")
