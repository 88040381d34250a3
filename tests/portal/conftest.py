"""Portal fixtures: a signed-in patient's client, and open slots at known clinic-local times."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from tests.factories import SlotFactory


def at(clinic, *, days: int, hour: int, minute: int = 0) -> dt.datetime:
    """An aware time `days` from today at hour:minute on the clinic's wall clock."""
    day = timezone.localdate(timezone=clinic.tz) + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=clinic.tz)


def make_slot(doctor, department, *, days: int = 2, hour: int = 10, minute: int = 0, **kwargs):
    return SlotFactory(
        doctor=doctor,
        department=department,
        start=at(department.clinic, days=days, hour=hour, minute=minute),
        **kwargs,
    )


@pytest.fixture
def as_patient(client, patient):
    client.force_login(patient.user)
    return client


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def open_slot(doctor, department):
    return make_slot(doctor, department, days=2, hour=10)


@pytest.fixture
def later_slot(doctor, department):
    return make_slot(doctor, department, days=3, hour=11)


_seconds = itertools.count(1)


def visit_in_consultation(*, doctor, department, patient, **notes):
    """Book, check in and open a consultation the way the clinic does (through the services)."""
    from consultations.services import consultation_open, consultation_update
    from scheduling.services import appointment_book, appointment_check_in

    start = timezone.now().replace(microsecond=0) + dt.timedelta(minutes=30, seconds=next(_seconds))
    slot = SlotFactory(doctor=doctor, department=department, start=start)
    appointment = appointment_check_in(
        actor=None, appointment=appointment_book(actor=None, patient=patient, slot=slot)
    )
    consultation = consultation_open(actor=doctor.user, appointment=appointment)
    if notes:
        consultation = consultation_update(actor=doctor.user, consultation=consultation, **notes)
    return consultation
