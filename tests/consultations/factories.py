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


# What a consultation is completed with at least (consultations.services.missing_from_record).
MINIMUM_NOTES = {
    "assessment": "Viral upper respiratory infection.",
    "plan": "Fluids and rest; review if worse.",
}


def still_needed(consultation: Consultation) -> dict:
    """The parts of the minimum record the consultation lacks, filled with calm values; what the test
    recorded itself stays as it is."""
    needed: dict = {}
    if consultation.news2_total is None and not consultation.vitals_not_taken_reason:
        needed.update(
            {name: value for name, value in CALM_VITALS.items() if getattr(consultation, name) in (None, "")}
        )
    if not consultation.assessment and not consultation.diagnosis_code:
        needed["assessment"] = MINIMUM_NOTES["assessment"]
    if not consultation.plan:
        needed["plan"] = MINIMUM_NOTES["plan"]
    return needed


def complete(consultation: Consultation, *, actor=None, now: dt.datetime | None = None) -> Consultation:
    """Complete it as a doctor would: the minimum record filled in (where missing) with the completion."""
    consultation = Consultation.objects.get(pk=consultation.pk)
    return consultation_complete(
        actor=actor or consultation.doctor.user,
        consultation=consultation,
        now=now,
        **still_needed(consultation),
    )


def complete_visit(*, actor, appointment: Appointment, now: dt.datetime | None = None) -> Appointment:
    """Finish a visit that is in consultation the only way there is: through its consultation record
    (opened here if the test has not), completed with the minimum record. The appointment, completed."""
    consultation = Consultation.objects.filter(appointment_id=appointment.pk).first()
    if consultation is None:
        consultation = consultation_open(actor=actor, appointment=appointment)
    complete(consultation, actor=actor, now=now)
    return Appointment.objects.get(pk=appointment.pk)


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
    return complete(consultation, actor=doctor.user)
