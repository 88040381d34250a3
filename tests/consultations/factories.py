"""Helpers that bring an appointment to the consultation room the way the clinic does: book, check in,
open. Everything goes through the services, so each step's rules hold in the tests too."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from consultations.models import Consultation
from consultations.services import consultation_complete, consultation_open, consultation_update
from scheduling.models import Appointment
from scheduling.services import appointment_book, appointment_check_in
from tests.factories import SlotFactory

_seconds = itertools.count(1)

# All seven NEWS2 parameters, every one scoring 0.
CALM_VITALS = {
    "respiratory_rate": 16,
    "spo2": 98,
    "on_supplemental_oxygen": False,
    "systolic_bp": 120,
    "diastolic_bp": 80,
    "pulse": 70,
    "consciousness": "A",
    "temperature": Decimal("37.0"),
}


def booked_appointment(*, doctor, department, patient, minutes_from_now: int = 30) -> Appointment:
    """Booked into a slot starting soon (inside the clinic's check-in window). Start times differ by a
    second per call, so a doctor's slots never clash."""
    start = timezone.now().replace(microsecond=0) + dt.timedelta(
        minutes=minutes_from_now, seconds=next(_seconds)
    )
    slot = SlotFactory(doctor=doctor, department=department, start=start, capacity=1)
    return appointment_book(actor=None, patient=patient, slot=slot)


def checked_in_appointment(*, doctor, department, patient) -> Appointment:
    return appointment_check_in(
        actor=None, appointment=booked_appointment(doctor=doctor, department=department, patient=patient)
    )


def open_consultation(*, doctor, department, patient, **changes) -> Consultation:
    appointment = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    consultation = consultation_open(actor=doctor.user, appointment=appointment)
    if changes:
        consultation = consultation_update(actor=doctor.user, consultation=consultation, **changes)
    return consultation


def completed_consultation(*, doctor, department, patient, **changes) -> Consultation:
    consultation = open_consultation(doctor=doctor, department=department, patient=patient, **changes)
    return consultation_complete(actor=doctor.user, consultation=consultation)
