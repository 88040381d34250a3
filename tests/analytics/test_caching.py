"""Statistics are cached per month and recomputed when something on a day of that month changes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from analytics import caching, selectors, subscribers
from opd.core import events
from opd.core.models import OutboxEvent
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule
from tests.factories import PatientFactory

from .conftest import EARLIER, MON, TUE, make_appointment, make_slot

pytestmark = pytest.mark.django_db


def appointments_on(scope, day: dt.date) -> int:
    (row,) = selectors.daily_statistics(scope, day, day)
    return row["appointments"]


def test_it_serves_a_day_from_the_cache_until_the_day_changes(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    assert appointments_on(scope, MON) == 5

    # A row written behind the services' back publishes nothing: the cached figure stands...
    extra = make_appointment(world.slots["s2"], world.patients[6], AppointmentStatus.CANCELLED, None)
    assert appointments_on(scope, MON) == 5

    # ...until an event says the appointment's day changed.
    subscribers.on_appointment_event(appointment_id=extra.pk)
    assert appointments_on(scope, MON) == 6


def test_a_change_recomputes_only_that_clinic_and_month(world, admin_user, django_assert_max_num_queries):
    scope = selectors.resolve_scope(admin_user)
    selectors.daily_statistics(scope, MON - dt.timedelta(days=3), MON + dt.timedelta(days=3))

    with django_assert_max_num_queries(0):
        selectors.daily_statistics(scope, MON - dt.timedelta(days=3), MON + dt.timedelta(days=3))
    caching.bump(world.clinic.pk, MON)
    # January is missing now: which of its days have stored figures (none), then one query per figure
    # family (appointments, p90 and its session setting, first visits, slots) for the whole month.
    with django_assert_max_num_queries(6):
        rows = selectors.daily_statistics(scope, MON - dt.timedelta(days=3), MON + dt.timedelta(days=3))
    assert rows[3]["appointments"] == 6


def test_a_change_leaves_other_clinics_and_months_cached(world, admin_user, django_assert_max_num_queries):
    central = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    north = selectors.resolve_scope(admin_user, clinic_ids=[world.other_clinic.pk])
    for scope in (central, north):
        selectors.daily_statistics(scope, EARLIER, TUE)

    caching.bump(world.clinic.pk, MON)

    with django_assert_max_num_queries(0):
        selectors.daily_statistics(north, EARLIER, TUE)
        selectors.daily_statistics(central, EARLIER, dt.date(2025, 12, 31))


def test_every_appointment_event_invalidates_once(world):
    for event in (
        events.APPOINTMENT_BOOKED,
        events.APPOINTMENT_CANCELLED,
        events.APPOINTMENT_RESCHEDULED,
        events.QUEUE_CHANGED,
    ):
        assert events._subscribers[event].count(subscribers.on_appointment_event) == 1


def test_booking_cancelling_and_rescheduling_change_the_figures(
    world, admin_user, staff_user, doctor, department, django_capture_on_commit_callbacks
):
    tomorrow = timezone.localdate(timezone=world.clinic.tz) + dt.timedelta(days=1)
    after = tomorrow + dt.timedelta(days=1)
    first = make_slot(doctor, department, tomorrow, "09:00", 1)
    second = make_slot(doctor, department, after, "09:00", 1)
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    assert appointments_on(scope, tomorrow) == 0  # cached, for a minute

    with django_capture_on_commit_callbacks(execute=True):
        booked = appointment_book(
            actor=staff_user, patient=PatientFactory(organization=world.org), slot=first
        )
    (row,) = selectors.daily_statistics(scope, tomorrow, tomorrow)
    assert (row["appointments"], row["booked"], row["seats_booked"], row["utilization"]) == (1, 1, 1, 1.0)

    assert appointments_on(scope, after) == 0
    with django_capture_on_commit_callbacks(execute=True):
        appointment_reschedule(actor=staff_user, appointment=booked, slot=second)
    # The appointment left tomorrow (its old day) for the day after.
    assert (appointments_on(scope, tomorrow), appointments_on(scope, after)) == (0, 1)

    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(actor=staff_user, appointment=Appointment.objects.get(pk=booked.pk))
    (row,) = selectors.daily_statistics(scope, after, after)
    assert (row["appointments"], row["cancelled"], row["seats_booked"]) == (1, 1, 0)


def test_keys_name_the_database(world):
    from django.db import connection

    assert caching.namespace().endswith(f":{connection.settings_dict['NAME']}")
    assert caching.version_key(world.clinic.pk, MON).startswith(caching.namespace())


def test_a_booking_event_delivered_twice_counts_the_booking_once(
    world, admin_user, staff_user, doctor, department, django_capture_on_commit_callbacks
):
    # The outbox delivers at least once: the relay may deliver again what the booking's process did.
    tomorrow = timezone.localdate(timezone=world.clinic.tz) + dt.timedelta(days=1)
    slot = make_slot(doctor, department, tomorrow, "09:00", 2)
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    assert appointments_on(scope, tomorrow) == 0  # cached

    with django_capture_on_commit_callbacks(execute=True):
        appointment_book(actor=staff_user, patient=PatientFactory(organization=world.org), slot=slot)
    assert appointments_on(scope, tomorrow) == 1
    stored = OutboxEvent.objects.get(event=events.APPOINTMENT_BOOKED)
    assert events.deliver(stored.event, stored.payload) is None  # the second delivery, from the row

    (row,) = selectors.daily_statistics(scope, tomorrow, tomorrow)
    assert (row["appointments"], row["booked"], row["seats_booked"]) == (1, 1, 1)
