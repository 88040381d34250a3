"""Two (or ten) clicks on "Open consultation" at once make one consultation: threads on MariaDB."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from consultations.models import Consultation
from consultations.services import consultation_open
from opd.core.errors import Conflict
from scheduling.models import AppointmentStatus
from tests.scheduling.test_booking_concurrency import run_at_once

from .factories import checked_in_appointment

pytestmark = pytest.mark.django_db(transaction=True)


def test_racing_requests_open_exactly_one_consultation(doctor, department, patient):
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)

    outcomes = run_at_once(10, lambda i: consultation_open(actor=doctor.user, appointment=appointment))

    opened = [o for o in outcomes if isinstance(o, Consultation)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(opened) == 1, outcomes
    assert len(refused) == 9, [o for o in outcomes if not isinstance(o, Consultation | Conflict)]
    assert {o.code for o in refused} == {"consultation_exists"}
    assert Consultation.objects.filter(appointment=appointment).count() == 1
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.IN_CONSULTATION


def test_racing_api_requests_get_one_201_and_409s(doctor, department, patient, api_as):
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    api_as(doctor.user)  # create the token before the threads start

    def post(_i: int) -> int:
        return api_as(doctor.user).post("/api/v1/consultations/", {"appointment": appointment.pk}).status_code

    statuses = run_at_once(6, post)

    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert Consultation.objects.filter(appointment=appointment).count() == 1


def test_the_database_refuses_a_second_consultation_for_an_appointment(doctor, department, patient):
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    first = consultation_open(actor=doctor.user, appointment=appointment)
    duplicate = {
        "organization_id": first.organization_id,
        "clinic_id": first.clinic_id,
        "appointment_id": first.appointment_id,
        "doctor_id": first.doctor_id,
        "patient_id": first.patient_id,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Consultation.objects.create(**duplicate)
