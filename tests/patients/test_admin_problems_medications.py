"""Problems and medications in the admin: through the services, by staff only (the allergy rules)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import AuditEvent
from patients.models import Medication, Problem
from patients.services import medication_add, problem_add

pytestmark = pytest.mark.django_db


def test_staff_add_a_problem_through_the_service_with_the_code_normalized(client, staff_user, patient):
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:patients_problem_add"),
        {"patient": patient.pk, "description": "Hypertension", "icd10_code": "i10", "status": "active"},
    )

    assert response.status_code == 302, response.content
    problem = Problem.objects.get()
    assert (problem.icd10_code, problem.recorded_by) == ("I10", staff_user)
    assert AuditEvent.objects.filter(action="problem.added", actor=staff_user).exists()


def test_a_bad_code_is_shown_beside_the_field_and_nothing_written(client, staff_user, patient):
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:patients_problem_add"),
        {"patient": patient.pk, "description": "Hypertension", "icd10_code": "high", "status": "active"},
    )
    assert response.status_code == 200
    assert "icd10_code" in response.context["adminform"].form.errors
    assert not Problem.objects.exists()


def test_staff_stop_a_medication_in_the_admin_with_before_and_after_audited(client, staff_user, patient):
    medication = medication_add(actor=staff_user, patient=patient, name="Amlodipine", dose="5 mg")
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:patients_medication_change", args=[medication.pk]),
        {
            "patient": patient.pk,
            "name": "Amlodipine",
            "dose": "5 mg",
            "frequency": "",
            "status": "stopped",
            "started_on": "",
            "stopped_on": "2025-03-01",
        },
    )

    assert response.status_code == 302, response.content
    stored = Medication.objects.get()
    assert (stored.status, str(stored.stopped_on)) == ("stopped", "2025-03-01")
    event = AuditEvent.objects.get(action="medication.updated")
    assert set(event.data["changes"]) == {"status", "stopped_on"}


def test_administrators_do_not_see_problems_or_medications(client, admin_user, staff_user, patient):
    problem_add(actor=staff_user, patient=patient, description="Asthma")
    client.force_login(admin_user)
    assert client.get(reverse("admin:patients_problem_changelist")).status_code == 403
    assert client.get(reverse("admin:patients_medication_changelist")).status_code == 403


def test_another_organizations_problem_is_404(client, other_org_user, staff_user, patient):
    problem = problem_add(actor=staff_user, patient=patient, description="Asthma")
    other_staff = type(staff_user).objects.create_user(
        username="hill-staff",
        password="pass-word-123",
        role="staff",
        organization=other_org_user.organization,
        is_staff=True,
    )
    client.force_login(other_staff)
    assert client.get(reverse("admin:patients_problem_change", args=[problem.pk])).status_code == 404
