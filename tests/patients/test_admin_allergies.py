"""Allergies in the admin: recorded and changed through the services, by staff only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import AuditEvent
from patients.models import Allergy
from patients.services import allergy_record

pytestmark = pytest.mark.django_db

ADD = reverse("admin:patients_allergy_add")
CHANGELIST = reverse("admin:patients_allergy_changelist")
PATIENTS = reverse("admin:patients_patient_changelist")


def form(patient, **overrides) -> dict:
    return {
        "patient": patient.pk,
        "substance": "Latex",
        "category": "environmental",
        "severity": "moderate",
        "reaction": "Contact dermatitis",
        "status": "active",
        **overrides,
    }


def test_staff_record_an_allergy_through_the_service(client, staff_user, patient):
    client.force_login(staff_user)

    response = client.post(ADD, form(patient))

    assert response.status_code == 302, response.content
    allergy = Allergy.objects.get()
    assert (allergy.substance, allergy.recorded_by) == ("Latex", staff_user)
    assert AuditEvent.objects.filter(action="allergy.recorded", actor=staff_user).exists()


def test_staff_change_an_allergy_with_before_and_after_audited(client, staff_user, patient):
    allergy = allergy_record(
        actor=staff_user, patient=patient, **{k: v for k, v in form(patient).items() if k != "patient"}
    )
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:patients_allergy_change", args=[allergy.pk]), form(patient, status="entered_in_error")
    )

    assert response.status_code == 302, response.content
    assert Allergy.objects.get().status == "entered_in_error"
    event = AuditEvent.objects.get(action="allergy.updated")
    assert event.data["changes"] == {"status": {"before": "active", "after": "entered_in_error"}}


def test_a_bad_value_is_shown_and_nothing_written(client, staff_user, patient):
    client.force_login(staff_user)
    response = client.post(ADD, form(patient, substance=""))
    assert response.status_code == 200
    assert "substance" in response.context["adminform"].form.errors
    assert not Allergy.objects.exists()


def test_administrators_do_not_see_allergies(client, admin_user, staff_user, patient):
    allergy_record(actor=staff_user, patient=patient, substance="Latex", category="other", severity="mild")
    client.force_login(admin_user)
    assert client.get(CHANGELIST).status_code == 403
    assert client.post(ADD, form(patient)).status_code == 403


def test_another_organizations_allergy_is_404(client, other_org_user, staff_user, patient):
    allergy = allergy_record(
        actor=staff_user, patient=patient, substance="Latex", category="other", severity="mild"
    )
    other_staff = type(staff_user).objects.create_user(
        username="hill-staff",
        password="pass-word-123",
        role="staff",
        organization=other_org_user.organization,
        is_staff=True,
    )
    client.force_login(other_staff)
    assert client.get(reverse("admin:patients_allergy_change", args=[allergy.pk])).status_code == 404


def test_the_patient_admin_records_no_known_allergies(client, staff_user, patient):
    client.force_login(staff_user)

    client.post(PATIENTS, {"action": "record_no_known_allergies", "_selected_action": [patient.pk]})

    patient.refresh_from_db()
    assert patient.no_known_allergies_by == staff_user
