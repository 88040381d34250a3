"""Call-next races, with real threads on MariaDB: never the same patient twice, never two for one doctor."""

from __future__ import annotations

import pytest

from opd.core.errors import Conflict
from scheduling.models import Appointment
from scheduling.services import queue_call_next
from tests.factories import DoctorFactory

from .queue_helpers import waiting
from .test_booking_concurrency import run_at_once

# The threads run in this process, so the pinned clock is theirs too.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


def outcomes_of(results: list) -> tuple[list[Appointment], list[Conflict]]:
    called = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(called) + len(refused) == len(results), [r for r in results if r not in called + refused]
    return called, refused


def test_two_clicks_at_once_call_one_patient(staff_user, doctor, department):
    for minutes in (10, 20, 30):
        waiting(staff_user, doctor, department, minutes=minutes)

    called, refused = outcomes_of(run_at_once(2, lambda i: queue_call_next(actor=doctor.user, doctor=doctor)))

    assert len(called) == 1
    assert [r.code for r in refused] == ["already_serving"]
    assert Appointment.objects.filter(called_at__isnull=False).count() == 1


def test_doctors_sharing_a_department_never_call_the_same_patient(org, staff_user, doctor, department):
    doctors = [doctor, *(DoctorFactory(user__organization=org, departments=[department]) for _ in range(3))]
    for n in range(6):
        waiting(staff_user, doctors[n % 4], department, minutes=5 + n * 7)

    # Every doctor clicks twice, all at once, taking from the department's pool.
    results = run_at_once(
        8, lambda i: queue_call_next(actor=doctors[i % 4].user, doctor=doctors[i % 4], pool=True)
    )
    called, refused = outcomes_of(results)

    assert len({a.pk for a in called}) == len(called) == 4  # one each, all different
    assert {a.doctor_id for a in called} == {d.pk for d in doctors}
    assert {r.code for r in refused} <= {"already_serving", "busy"}
    rows = Appointment.objects.filter(called_at__isnull=False)
    assert rows.count() == 4
    assert sorted(rows.values_list("doctor_id", flat=True)) == sorted(d.pk for d in doctors)


def test_more_doctors_than_patients_call_each_patient_once(org, staff_user, doctor, department):
    doctors = [doctor, *(DoctorFactory(user__organization=org, departments=[department]) for _ in range(4))]
    first = waiting(staff_user, doctors[1], department, minutes=10)
    second = waiting(staff_user, doctors[2], department, minutes=20)

    called, refused = outcomes_of(
        run_at_once(5, lambda i: queue_call_next(actor=doctors[i].user, doctor=doctors[i], pool=True))
    )

    assert sorted(a.pk for a in called) == sorted([first.pk, second.pk])
    assert len(refused) == 3
    assert {r.code for r in refused} <= {"queue_empty", "busy"}
    assert Appointment.objects.filter(called_at__isnull=False).count() == 2
