"""Slots come from weekly rules and exceptions, in clinic local time, across DST changes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from scheduling.models import ApprovalStatus, AvailabilityRule, ExceptionKind, Slot
from scheduling.services import (
    appointment_book,
    availability_exception_create,
    availability_rule_create,
    availability_rule_delete,
    doctor_set_approval,
    slots_generate,
)
from scheduling.services.slots import local_to_utc
from tests.factories import DoctorFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


def next_weekday(weekday: int, after: dt.date | None = None) -> dt.date:
    day = (after or timezone.localdate()) + dt.timedelta(days=1)
    while day.weekday() != weekday:
        day += dt.timedelta(days=1)
    return day


def local_starts(doctor, day):
    return [
        s.start.astimezone(LONDON).strftime("%H:%M")
        for s in Slot.objects.filter(doctor=doctor, date=day, is_active=True)
    ]


def test_it_cuts_a_weekly_session_into_slots_in_clinic_time(staff_user, doctor, department):
    monday = next_weekday(0)
    availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=0,
        start_time=dt.time(9),
        end_time=dt.time(10),
        slot_minutes=20,
        capacity=3,
    )
    assert local_starts(doctor, monday) == ["09:00", "09:20", "09:40"]
    slot = Slot.objects.filter(doctor=doctor, date=monday).first()
    assert slot.capacity == 3
    assert slot.end - slot.start == dt.timedelta(minutes=20)
    assert (slot.clinic_id, slot.department_id, slot.organization_id) == (
        department.clinic_id,
        department.pk,
        department.clinic.organization_id,
    )


def test_regenerating_creates_nothing_twice(staff_user, doctor, department):
    availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=2,
        start_time=dt.time(9),
        end_time=dt.time(12),
    )
    before = Slot.objects.count()
    report = slots_generate()
    assert before > 0
    assert report.created == 0
    assert Slot.objects.count() == before


def test_a_spring_forward_night_skips_the_hour_that_does_not_exist():
    # 29 March 2026: clocks in London go from 01:00 to 02:00 GMT -> BST.
    assert local_to_utc(dt.date(2026, 3, 29), dt.time(1, 30), LONDON) is None
    assert local_to_utc(dt.date(2026, 3, 29), dt.time(2, 30), LONDON) == dt.datetime(
        2026, 3, 29, 1, 30, tzinfo=dt.UTC
    )
    # Morning clinic times keep their wall-clock hour on either side of the change.
    assert local_to_utc(dt.date(2026, 3, 28), dt.time(9), LONDON).hour == 9
    assert local_to_utc(dt.date(2026, 3, 30), dt.time(9), LONDON).hour == 8


def test_slots_keep_local_time_across_a_dst_change(staff_user, org, department):
    doctor = DoctorFactory(user__organization=org, departments=[department])
    # A Sunday rule, generated over the Sunday clocks go back (25 October 2026) and the one after.
    AvailabilityRule.objects.create(
        doctor=doctor,
        department=department,
        weekday=6,
        start_time=dt.time(0, 30),
        end_time=dt.time(2, 30),
        slot_minutes=30,
        valid_from=dt.date(2026, 1, 1),
    )
    from scheduling.services.slots import desired_slots

    wanted = desired_slots(doctor, dt.date(2026, 10, 25), dt.date(2026, 11, 1))
    days = {}
    for start, (end, _session, day) in sorted(wanted.items()):
        days.setdefault(day, []).append((start.astimezone(LONDON).strftime("%H:%M"), end - start))
    # Every slot is 30 real minutes; on the night of the change 01:00 and 01:30 happen twice, and the
    # first occurrence is the one offered, so local times stay as the rule says.
    assert [t for t, _ in days[dt.date(2026, 10, 25)]] == ["00:30", "01:00", "01:30", "02:00"]
    assert [t for t, _ in days[dt.date(2026, 11, 1)]] == ["00:30", "01:00", "01:30", "02:00"]
    assert all(length == dt.timedelta(minutes=30) for slots in days.values() for _, length in slots)


def test_leave_removes_time_and_extra_session_adds_it(staff_user, doctor, department):
    tuesday = next_weekday(1)
    availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=1,
        start_time=dt.time(9),
        end_time=dt.time(11),
        slot_minutes=30,
    )
    availability_exception_create(
        actor=staff_user,
        doctor=doctor,
        kind=ExceptionKind.LEAVE,
        date=tuesday,
        start_time=dt.time(9, 30),
        end_time=dt.time(10, 30),
    )
    assert local_starts(doctor, tuesday) == ["09:00", "10:30"]
    availability_exception_create(
        actor=staff_user,
        doctor=doctor,
        kind=ExceptionKind.EXTRA,
        date=tuesday,
        department=department,
        start_time=dt.time(14),
        end_time=dt.time(15),
        slot_minutes=30,
    )
    assert local_starts(doctor, tuesday) == ["09:00", "10:30", "14:00", "14:30"]
    availability_exception_create(actor=staff_user, doctor=doctor, kind=ExceptionKind.LEAVE, date=tuesday)
    assert local_starts(doctor, tuesday) == []


def test_removing_availability_never_deletes_a_booked_slot(staff_user, doctor, department, patient):
    thursday = next_weekday(3)
    rule = availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=3,
        start_time=dt.time(9),
        end_time=dt.time(10),
        slot_minutes=30,
    )
    booked_slot = Slot.objects.filter(doctor=doctor, date=thursday).first()
    appt = appointment_book(actor=staff_user, patient=patient, slot=booked_slot)
    total = Slot.objects.filter(doctor=doctor).count()

    availability_rule_delete(actor=staff_user, rule=rule)

    booked_slot.refresh_from_db()
    assert Slot.objects.filter(doctor=doctor).count() == total  # closed, not deleted
    assert not Slot.objects.filter(doctor=doctor, is_active=True).exists()
    assert booked_slot.booked_count == 1
    assert booked_slot.appointments.get() == appt


def test_only_approved_doctors_get_slots(staff_user, org, department):
    doctor = DoctorFactory(
        user__organization=org, departments=[department], approval_status=ApprovalStatus.PENDING
    )
    availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=4,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    assert not Slot.objects.filter(doctor=doctor, is_active=True).exists()
    doctor_set_approval(actor=staff_user, doctor=doctor, status=ApprovalStatus.APPROVED)
    assert Slot.objects.filter(doctor=doctor, is_active=True).exists()
    doctor_set_approval(actor=staff_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)
    assert not Slot.objects.filter(doctor=doctor, is_active=True).exists()


def test_the_beat_task_rolls_the_horizon_forward(staff_user, doctor, department):
    from scheduling.tasks import roll_slot_horizon

    availability_rule_create(
        actor=staff_user,
        doctor=doctor,
        department=department,
        weekday=5,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    Slot.objects.filter(doctor=doctor).delete()
    result = roll_slot_horizon.apply().get()
    assert result["created"] == Slot.objects.filter(doctor=doctor).count() > 0
