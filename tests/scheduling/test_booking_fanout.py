"""A booking's after-commit work, flattened: one event per change, versions bumped in the change's own
transaction, a broadcaster that only sends, analytics that marks a day once, one deadlock retry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import timezone

from analytics import subscribers as analytics_subscribers
from opd.core import events
from opd.core.errors import Conflict
from opd.core.models import IdempotencyRecord
from scheduling import realtime
from scheduling.models import Appointment, QueueVersion
from scheduling.selectors import patient_change_window
from scheduling.services import (
    COMPLETE,
    START,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    appointment_transition,
)
from scheduling.services import booking as booking_services
from tests.consultations.factories import complete_visit
from tests.factories import DoctorFactory, PatientFactory, SlotFactory

from .queue_helpers import booked, waiting

pytestmark = pytest.mark.django_db

APPOINTMENTS = "/api/v1/appointments/"


@pytest.fixture(autouse=True)
def _daytime(daytime):
    """Bookings "in N minutes" stay on the clinic's today (the clock pinned at mid-morning)."""


@pytest.fixture
def published(monkeypatch):
    """Every event published, in order, as (name, payload)."""
    seen: list[tuple[str, dict]] = []
    real = events.publish

    def record(event: str, **payload) -> None:
        seen.append((event, payload))
        real(event, **payload)

    monkeypatch.setattr(events, "publish", record)
    return seen


@pytest.fixture
def sent(monkeypatch):
    """Group messages realtime hands to the channel layer."""
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(realtime, "send_group_messages", messages.extend)
    return messages


def versions() -> dict[str, int]:
    return dict(QueueVersion.objects.values_list("queue", "last_value"))


def future_slot(doctor, department, *, days: float = 3):
    # Not tests.conftest.future_slot: its shared counter moves every later caller's slot 20 minutes on.
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(days=days)
    return SlotFactory(doctor=doctor, department=department, start=start, capacity=4)


def test_a_booking_for_today_publishes_one_event_and_bumps_each_queue_once_in_its_transaction(
    staff_user, doctor, department, clinic, published
):
    appt = booked(staff_user, doctor, department)

    # No on-commit callback has run (the test's transaction never commits): the bump is the booking's own.
    assert versions() == {f"clinic:{clinic.pk}": 1, f"doctor:{doctor.pk}": 1}
    assert [name for name, _ in published] == [events.APPOINTMENT_BOOKED]
    payload = published[0][1]
    assert payload["appointment_id"] == appt.pk
    assert payload["action"] == "booked"
    assert payload["versions"] == {f"clinic:{clinic.pk}": 1, f"doctor:{doctor.pk}": 1}
    assert payload["entry"]["patient"]["name"] == appt.patient.full_name
    assert "patient" not in payload["public_entry"]


def test_realtime_turns_the_event_into_one_group_send_per_queue_without_a_query(
    staff_user, doctor, department, clinic, published, sent, django_assert_num_queries
):
    appt = booked(staff_user, doctor, department)
    [(_, payload)] = published

    with django_assert_num_queries(0):
        realtime.on_queue_event(**payload)

    assert sorted(group for group, _ in sent) == [f"queue.clinic.{clinic.pk}", f"queue.doctor.{doctor.pk}"]
    by_group = dict(sent)
    mine = by_group[f"queue.doctor.{doctor.pk}"]
    assert (mine["version"], mine["action"], mine["appointment_id"]) == (1, "booked", appt.pk)
    assert mine["entry"]["state"] == "booked"
    assert "patient" not in by_group[f"queue.clinic.{clinic.pk}"]["entry"]


def test_a_booking_runs_each_subscriber_once_and_publishes_nothing_more_after_commit(
    staff_user, doctor, department, django_capture_on_commit_callbacks, published, sent
):
    with django_capture_on_commit_callbacks(execute=True):
        booked(staff_user, doctor, department)

    # No handler opens a second transaction to publish again (notifications may publish its own sends).
    assert [name for name, _ in published if name in events.APPOINTMENT_EVENTS] == [events.APPOINTMENT_BOOKED]
    assert len(sent) == 2  # the doctor's and the clinic's queue, once each


def test_a_booking_for_another_day_bumps_nothing_and_the_broadcaster_sends_nothing(
    staff_user, doctor, department, published, sent, django_assert_num_queries
):
    appointment_book(
        actor=staff_user,
        patient=PatientFactory(organization=doctor.organization),
        slot=future_slot(doctor, department),
    )

    assert versions() == {}
    [(name, payload)] = published
    assert (name, payload["versions"], payload["entry"]) == (events.APPOINTMENT_BOOKED, {}, None)
    with django_assert_num_queries(0):
        realtime.on_queue_event(**payload)
    assert sent == []


def test_a_cancellation_for_today_publishes_one_event_with_the_next_versions(
    staff_user, doctor, department, clinic, published
):
    appt = booked(staff_user, doctor, department)
    published.clear()

    appointment_cancel(actor=staff_user, appointment=appt)

    assert [name for name, _ in published] == [events.APPOINTMENT_CANCELLED]
    payload = published[0][1]
    assert payload["versions"] == {f"clinic:{clinic.pk}": 2, f"doctor:{doctor.pk}": 2}
    assert payload["entry"]["state"] == "cancelled"
    assert (payload["clinic_id"], payload["day"]) == (clinic.pk, appt.slot.date)


def test_a_move_from_today_to_a_colleague_next_week_tells_the_queues_it_leaves(
    staff_user, org, doctor, department, clinic, published
):
    colleague = DoctorFactory(user__organization=org, departments=[department])
    appt = booked(staff_user, doctor, department)
    published.clear()

    appointment_reschedule(
        actor=staff_user, appointment=appt, slot=future_slot(colleague, department, days=7)
    )

    [(name, payload)] = published
    assert name == events.APPOINTMENT_RESCHEDULED
    # Today's queues lose the patient; the colleague's queue next week is not live yet.
    assert payload["versions"] == {f"clinic:{clinic.pk}": 2, f"doctor:{doctor.pk}": 2}
    assert (payload["previous_clinic_id"], payload["previous_day"]) == (clinic.pk, appt.slot.date)
    assert versions() == {f"clinic:{clinic.pk}": 2, f"doctor:{doctor.pk}": 2}


def test_analytics_marks_the_day_once_per_booking(
    staff_user, doctor, department, clinic, monkeypatch, django_capture_on_commit_callbacks
):
    marked = []
    monkeypatch.setattr(analytics_subscribers, "bump", lambda clinic_id, day: marked.append((clinic_id, day)))

    with django_capture_on_commit_callbacks(execute=True):
        today = booked(staff_user, doctor, department)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(actor=staff_user, appointment=today)

    assert marked == [(clinic.pk, today.slot.date)] * 2


def test_a_queue_step_marks_its_day_once_without_reading_the_row(
    staff_user, doctor, department, clinic, monkeypatch, django_capture_on_commit_callbacks
):
    appt = waiting(staff_user, doctor, department)
    marked = []
    monkeypatch.setattr(analytics_subscribers, "bump", lambda clinic_id, day: marked.append((clinic_id, day)))

    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(actor=doctor.user, appointment=appt, transition=START)

    assert marked == [(clinic.pk, appt.slot.date)]


# One transition helper


def test_starting_twice_is_a_no_op_but_completing_twice_is_refused(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    started = appointment_transition(actor=doctor.user, appointment=appt, transition=START)
    again = appointment_transition(actor=doctor.user, appointment=appt, transition=START)
    assert again.started_at == started.started_at
    complete_visit(actor=doctor.user, appointment=appt)

    with pytest.raises(Conflict, match="completed cannot be completed"):
        appointment_transition(actor=doctor.user, appointment=appt, transition=COMPLETE)


# The cut-off rule, once


def test_the_cut_off_window_closes_at_the_cut_off_itself(staff_user, patient, doctor, department, clinic):
    appt = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department, days=1))
    closes = appt.start - dt.timedelta(minutes=clinic.cancellation_cutoff_minutes)

    assert patient_change_window(appt, closes).allowed
    shut = patient_change_window(appt, closes + dt.timedelta(seconds=1))
    assert not shut.allowed
    assert shut.reason.startswith("Online changes close 2 hours before the start")


# One retry policy for DRF actions


def _deadlocking(monkeypatch, times: int) -> list[int]:
    """Make the booking a deadlock victim `times` times, deep inside the service's own transaction (as
    InnoDB would, on a locking read), then let it through."""
    calls: list[int] = []
    real = booking_services._lock_for_booking

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
        return real(*args, **kwargs)

    monkeypatch.setattr(booking_services, "_lock_for_booking", flaky)
    return calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "retry-key"])
def test_a_deadlock_victim_is_retried_at_the_actions_transaction(
    api_as, staff_user, patient, slot, monkeypatch, key
):
    calls = _deadlocking(monkeypatch, times=2)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json", **headers
    )

    assert response.status_code == 201, response.content
    assert len(calls) == 3
    assert Appointment.objects.count() == 1
    assert IdempotencyRecord.objects.count() == (1 if key else 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "retry-key"])
def test_a_deadlock_that_keeps_coming_is_a_busy_conflict_after_one_round_of_retries(
    api_as, staff_user, patient, slot, monkeypatch, key
):
    calls = _deadlocking(monkeypatch, times=100)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json", **headers
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "busy"
    # One retry loop (opd.core.db.retry_on_deadlock) at the action's transaction, not the service's inside it.
    assert len(calls) == 5
    assert not Appointment.objects.exists()
    assert not IdempotencyRecord.objects.exists()
