"""Who opened my record (issue #15): the patient sees the reads of their record by others, in the clinic's
time zone, with roles (and names where the organization says so); nobody else's, and nobody else sees it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import Organization
from tests.conftest import BREAK_GLASS, assert_error
from tests.consultations.factories import completed_consultation

pytestmark = pytest.mark.django_db

ACCESSES = "/api/v1/me/accesses/"


@pytest.fixture
def seen(api_as, doctor, colleague, department, patient, clinic):
    """The patient's completed visit, read by their doctor, and by a colleague with a stated reason."""
    clinic.time_zone = "Asia/Kolkata"
    clinic.save()
    consultation = completed_consultation(doctor=doctor, department=department, patient=patient)
    api_as(doctor.user).get(f"/api/v1/consultations/{consultation.pk}/")
    api_as(colleague.user).get(f"/api/v1/consultations/{consultation.pk}/", {"reason": BREAK_GLASS})
    return consultation


def test_the_patient_sees_who_opened_their_record(client, patient, seen):
    client.force_login(patient.user)
    page = client.get(reverse("portal:accesses"))

    assert page.status_code == 200
    text = page.content.decode()
    rows = page.context["rows"]
    assert [r.kind for r in rows] == ["record.viewed", "record.break_glass", "record.viewed"]
    assert {r.role for r in rows} == {"Doctor"}
    assert "Asia/Kolkata" in text  # the clinic's time zone, named
    assert "Opened with a stated reason" in text
    assert seen.clinic.name in text
    # Role only by default: no staff names.
    assert {r.name for r in rows} == {""}
    assert seen.doctor.user.username not in text
    assert 'href="/portal/record/accesses/"' in text  # in the portal's navigation


def test_the_patients_own_reads_are_left_out(client, patient, seen):
    client.force_login(patient.user)
    client.get(reverse("portal:record"))  # logged, as the patient
    rows = client.get(reverse("portal:accesses")).context["rows"]
    assert "Patient" not in {r.role for r in rows}
    assert len(rows) == 3


def test_names_are_shown_when_the_organization_says_so(api_as, patient, seen, org, doctor):
    Organization.objects.filter(pk=org.pk).update(access_log_shows_names=True)
    body = api_as(patient.user).get(ACCESSES).json()
    names = {row["name"] for row in body["results"]}
    assert (doctor.user.get_full_name() or doctor.user.username) in names
    assert "" not in names


def test_the_api_answers_the_same_rows_paginated(api_as, patient, seen):
    body = api_as(patient.user).get(ACCESSES, {"page_size": 2}).json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    first = body["results"][0]
    assert set(first) == {"at", "time_zone", "kind", "description", "role", "clinic", "name", "with_reason"}
    assert first["time_zone"] == "Asia/Kolkata"
    assert first["name"] == ""


def test_another_patients_accesses_are_never_shown(client, api_as, other_patient, seen):
    client.force_login(other_patient.user)
    assert client.get(reverse("portal:accesses")).context["rows"] == []
    assert api_as(other_patient.user).get(ACCESSES).json()["count"] == 0


def test_staff_and_doctors_cannot_use_the_patients_endpoint(
    api, api_as, staff_user, doctor, admin_user, seen
):
    for user in (staff_user, doctor.user, admin_user):
        assert_error(api_as(user).get(ACCESSES), 403, "permission_denied")
    assert api.get(ACCESSES).status_code == 401


def test_staff_are_sent_away_from_the_page(client, staff_user):
    client.force_login(staff_user)
    assert client.get(reverse("portal:accesses")).status_code == 302


def test_the_page_is_paginated(client, api_as, doctor, department, patient):
    consultation = completed_consultation(doctor=doctor, department=department, patient=patient)
    reader = api_as(doctor.user)
    for _ in range(26):
        reader.get(f"/api/v1/consultations/{consultation.pk}/")
    client.force_login(patient.user)
    first = client.get(reverse("portal:accesses"))
    assert len(first.context["rows"]) == 25
    assert "Page 1 of 2" in first.content.decode()
    assert len(client.get(reverse("portal:accesses"), {"page": 2}).context["rows"]) == 1


def test_an_admin_sets_the_policy_in_the_admin_and_it_is_audited(client, admin_user, org):
    from opd.core.models import AuditEvent

    client.force_login(admin_user)
    response = client.post(
        reverse("admin:core_organization_change", args=[org.pk]),
        # The form's other policy kept as it was: only this one changes.
        {"name": org.name, "access_log_shows_names": "on", "require_second_factor": "on"},
    )

    assert response.status_code == 302, response.content
    org.refresh_from_db()
    assert org.access_log_shows_names is True
    event = AuditEvent.objects.get(action="organization.changed")
    assert event.data["fields"] == ["access_log_shows_names"]
