"""A patient booking themselves holds at most OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT future appointments in
an organization (default 3); staff booking on the patient's behalf may go past it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from opd.core.errors import Conflict
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book, appointment_book_first_available, appointment_cancel
from tests.conftest import assert_error
from tests.factories import SlotFactory

from .test_booking_concurrency import run_at_once

APPOINTMENTS = "/api/v1/appointments/"


def slots(doctor, department, n: int):
    base = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    return [
        SlotFactory(doctor=doctor, department=department, start=base + dt.timedelta(hours=i), capacity=1)
        for i in range(n)
    ]


@pytest.mark.django_db
def test_the_default_cap_is_three(settings):
    assert settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT == 3


@pytest.mark.django_db
def test_a_patient_is_refused_past_the_cap_with_409_naming_it(api_as, patient, doctor, department):
    four = slots(doctor, department, 4)
    client = api_as(patient.user)
    for slot in four[:3]:
        assert client.post(APPOINTMENTS, {"slot": slot.pk}, format="json").status_code == 201

    response = client.post(APPOINTMENTS, {"slot": four[3].pk}, format="json")

    assert_error(response, 409, "booking_cap")
    assert "at most 3" in response.json()["error"]["message"]
    first_available = client.post(APPOINTMENTS, {"department": department.pk}, format="json")
    assert_error(first_available, 409, "booking_cap")
    assert Appointment.objects.filter(patient=patient).count() == 3


@pytest.mark.django_db
def test_the_cap_follows_the_setting_and_counts_only_future_booked(settings, patient, doctor, department):
    settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT = 1
    first, second = slots(doctor, department, 2)
    booked = appointment_book(actor=patient.user, patient=patient, slot=first)
    with pytest.raises(Conflict) as refused:
        appointment_book(actor=patient.user, patient=patient, slot=second)
    assert refused.value.code == "booking_cap"

    appointment_cancel(actor=patient.user, appointment=booked)

    assert (
        appointment_book(actor=patient.user, patient=patient, slot=second).status == AppointmentStatus.BOOKED
    )


@pytest.mark.django_db
def test_the_portal_shows_the_cap(client, settings, patient, doctor, department):
    settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT = 1
    first, second = slots(doctor, department, 2)
    appointment_book(actor=patient.user, patient=patient, slot=first)
    client.force_login(patient.user)

    response = client.post(
        reverse("portal:book", args=[second.pk]), {"reason": "x", "token": str(uuid.uuid4())}
    )

    assert response.status_code == 409
    assert "at most 1" in response.content.decode()


@pytest.mark.django_db
def test_staff_may_book_a_patient_past_the_cap(settings, staff_user, patient, doctor, department):
    settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT = 1
    first, second, _third = slots(doctor, department, 3)
    appointment_book(actor=patient.user, patient=patient, slot=first)

    appointment_book(actor=staff_user, patient=patient, slot=second)
    appointment_book_first_available(actor=staff_user, patient=patient, department_id=department.pk)

    assert Appointment.objects.filter(patient=patient).count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_parallel_bookings_at_the_cap_boundary_do_not_both_pass(settings, patient, doctor, department):
    settings.OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT = 3
    held = slots(doctor, department, 6)
    for slot in held[:2]:
        appointment_book(actor=patient.user, patient=patient, slot=slot)
    contested = held[2:]

    outcomes = run_at_once(
        4, lambda i: appointment_book(actor=patient.user, patient=patient, slot=contested[i])
    )

    booked = [o for o in outcomes if isinstance(o, Appointment)]
    refused = [o for o in outcomes if isinstance(o, Conflict) and o.code == "booking_cap"]
    assert (len(booked), len(refused)) == (1, 3), outcomes
    assert Appointment.objects.filter(patient=patient, status=AppointmentStatus.BOOKED).count() == 3
