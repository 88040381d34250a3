"""Periodic work: the no-show sweep (booked, never checked in, ended past the grace), and beat's task names."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from opd.core.models import AuditEvent
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book, appointment_cancel, appointments_sweep_no_shows
from scheduling.tasks import sweep_no_shows
from tests.conftest import future_slot
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def booked_at(staff_user, patient, doctor, department, *, ended_minutes_ago: float, status=None):
    """An appointment that ended that long ago (booked in the future, then moved back in time)."""
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    end = timezone.now() - dt.timedelta(minutes=ended_minutes_ago)
    changes = {"start": end - dt.timedelta(minutes=15), "end": end}
    if status:
        changes["status"] = status
    Appointment.objects.filter(pk=appointment.pk).update(**changes)
    return appointment


def test_it_marks_booked_appointments_that_ended_past_the_grace_as_no_show(
    org, staff_user, doctor, department, settings
):
    settings.OPD_NO_SHOW_GRACE_MINUTES = 30
    patients = [PatientFactory(organization=org) for _ in range(4)]
    missed = booked_at(staff_user, patients[0], doctor, department, ended_minutes_ago=45)
    in_grace = booked_at(staff_user, patients[1], doctor, department, ended_minutes_ago=10)
    came = booked_at(
        staff_user, patients[2], doctor, department, ended_minutes_ago=45, status=AppointmentStatus.CHECKED_IN
    )
    upcoming = appointment_book(actor=staff_user, patient=patients[3], slot=future_slot(doctor, department))

    assert appointments_sweep_no_shows() == 1

    statuses = dict(Appointment.objects.values_list("pk", "status"))
    assert statuses[missed.pk] == AppointmentStatus.NO_SHOW
    assert statuses[in_grace.pk] == AppointmentStatus.BOOKED
    assert statuses[came.pk] == AppointmentStatus.CHECKED_IN
    assert statuses[upcoming.pk] == AppointmentStatus.BOOKED
    assert AuditEvent.objects.filter(action="appointment.no_show", object_id=str(missed.pk)).exists()


def test_running_the_sweep_twice_changes_nothing_the_second_time(patient, staff_user, doctor, department):
    booked_at(staff_user, patient, doctor, department, ended_minutes_ago=120)

    assert sweep_no_shows.delay().get() == 1
    assert sweep_no_shows.delay().get() == 0


def test_it_leaves_cancelled_appointments_alone(patient, staff_user, doctor, department):
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    appointment_cancel(actor=staff_user, appointment=appointment)
    Appointment.objects.filter(pk=appointment.pk).update(
        start=timezone.now() - dt.timedelta(hours=3), end=timezone.now() - dt.timedelta(hours=2)
    )

    assert appointments_sweep_no_shows() == 0


def test_the_periodic_tasks_beat_runs_are_registered_under_their_names():
    from opd.celery import app

    app.loader.import_default_modules()
    assert {"notifications.dispatch_due", "scheduling.sweep_no_shows", "archive.archive_old_records"} <= set(
        app.tasks
    )
