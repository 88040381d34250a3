"""Concurrency claims, proved with real threads on MariaDB (each thread has its own connection)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from opd.core.errors import Conflict
from scheduling.models import Appointment, Slot
from scheduling.services import appointment_book, appointment_book_first_available, appointment_reschedule
from tests.factories import DoctorFactory, PatientFactory, SlotFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(n: int, work) -> list:
    """Start n threads that wait at a barrier, then call work(i); return each outcome (result or error)."""
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = work(i)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_fifty_threads_booking_one_seat_make_exactly_one_appointment(org, staff_user, doctor, department):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    patients = [PatientFactory(organization=org) for _ in range(50)]

    outcomes = run_at_once(50, lambda i: appointment_book(actor=staff_user, patient=patients[i], slot=slot))

    booked = [o for o in outcomes if isinstance(o, Appointment)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(booked) == 1
    assert len(refused) == 49, [o for o in outcomes if not isinstance(o, Appointment | Conflict)]
    slot.refresh_from_db()
    assert slot.booked_count == 1 == Appointment.objects.filter(slot=slot).count()


def test_fifty_threads_auto_assigning_fill_ten_seats_and_no_more(org, staff_user, department):
    doctors = [DoctorFactory(user__organization=org, departments=[department]) for _ in range(3)]
    # 10 seats over 3 doctors: capacities 2+2+1 / 2+1 / 1+1, some on a later day.
    base = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    seats = [(0, 0, 2), (0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 1, 1), (2, 0, 1), (2, 30, 1)]
    for doctor_index, offset, capacity in seats:
        SlotFactory(
            doctor=doctors[doctor_index],
            department=department,
            capacity=capacity,
            start=base + dt.timedelta(hours=offset),
        )
    patients = [PatientFactory(organization=org) for _ in range(50)]

    outcomes = run_at_once(
        50,
        lambda i: appointment_book_first_available(
            actor=staff_user, patient=patients[i], department_id=department.pk
        ),
    )

    booked = [o for o in outcomes if isinstance(o, Appointment)]
    unexpected = [o for o in outcomes if not isinstance(o, Appointment | Conflict)]
    assert not unexpected
    assert len(booked) == 10
    assert Appointment.objects.count() == 10
    assert not Slot.objects.filter(booked_count__gt=F("capacity")).exists()
    per_slot = Slot.objects.annotate(rows=Count("appointments", filter=Q(appointments__seat__isnull=False)))
    assert all(s.rows == s.booked_count == s.capacity for s in per_slot)


def test_crossing_reschedules_do_not_lose_or_double_a_seat(org, staff_user, doctor, department):
    first = SlotFactory(doctor=doctor, department=department, capacity=1)
    second = SlotFactory(
        doctor=doctor, department=department, capacity=2, start=first.start + dt.timedelta(hours=1)
    )
    a, b = PatientFactory(organization=org), PatientFactory(organization=org)
    appt_a = appointment_book(actor=staff_user, patient=a, slot=first)
    appt_b = appointment_book(actor=staff_user, patient=b, slot=second)

    # A moves to the second slot while B tries to move into A's (still full) first slot.
    moves = [(appt_a, second), (appt_b, first)]
    outcomes = run_at_once(
        2, lambda i: appointment_reschedule(actor=staff_user, appointment=moves[i][0], slot=moves[i][1])
    )

    assert not [o for o in outcomes if not isinstance(o, Appointment | Conflict)]
    for s in (first, second):
        s.refresh_from_db()
        assert s.booked_count == Appointment.objects.filter(slot=s, seat__isnull=False).count() <= s.capacity
    assert Appointment.objects.filter(seat__isnull=False).count() == 2
