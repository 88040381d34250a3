"""An edit keeps the before and after of the fields it changed, except clinical free text and identifiers
encrypted at rest: of those the trail keeps that they changed, their lengths and a keyed fingerprint."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from consultations.services import consultation_update
from opd.core.audit import changes
from opd.core.models import AuditEvent
from opd.core.services import organization_update
from patients.services import patient_update
from tests.consultations.factories import open_consultation

pytestmark = pytest.mark.django_db


def last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("pk")


def test_it_keeps_the_old_and_new_values_of_a_consultation_edit(doctor, department, patient):
    consultation = open_consultation(
        doctor=doctor, department=department, patient=patient, pulse=70, assessment="Viral sore throat."
    )

    consultation_update(
        actor=doctor.user, consultation=consultation, pulse=118, assessment="Bacterial tonsillitis, likely."
    )

    event = last("consultation.updated")
    assert event.data["changes"]["pulse"] == {"before": 70, "after": 118}
    assessment = event.data["changes"]["assessment"]
    assert assessment["redacted"] is True
    assert (assessment["before"]["length"], assessment["after"]["length"]) == (18, 30)
    assert assessment["before"]["fingerprint"] != assessment["after"]["fingerprint"]
    stored = json.dumps([e.data for e in AuditEvent.objects.all()])
    assert "tonsillitis" not in stored
    assert "Viral sore throat" not in stored


def test_it_keeps_a_patients_name_change_but_not_the_phone_number(patient, staff_user):
    old_name, old_phone = patient.last_name, patient.phone

    patient_update(actor=staff_user, patient=patient, last_name="Okonkwo-Reyes", phone="+44 7700 900123")

    event = last("patient.updated")
    assert event.patient_id == patient.pk
    assert event.data["changes"]["last_name"] == {"before": old_name, "after": "Okonkwo-Reyes"}
    assert event.data["changes"]["phone"]["redacted"] is True
    stored = json.dumps(event.data)
    assert "900123" not in stored
    assert not old_phone or old_phone not in stored


def test_it_keeps_an_organizations_old_name(org, admin_user):
    organization_update(actor=admin_user, organization=org, name="Riverside Health Trust")

    assert last("organization.changed").data["changes"] == {
        "name": {"before": "Riverside Health", "after": "Riverside Health Trust"}
    }


def test_changes_lists_only_what_differs_in_values_json_can_hold():
    before = {"day": dt.date(2026, 1, 5), "dose": Decimal("2.50"), "same": 1, "notes": "Take with food."}
    after = {"day": dt.date(2026, 1, 6), "dose": Decimal("2.50"), "same": 1, "notes": "Take after food."}

    result = changes(before, after, ["day", "dose", "same", "notes"])

    assert result["day"] == {"before": "2026-01-05", "after": "2026-01-06"}
    assert set(result) == {"day", "notes"}
    assert result["notes"]["redacted"] is True
    assert json.loads(json.dumps(result)) == result
