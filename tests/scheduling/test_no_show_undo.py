"""Undoing a no-show (services.queue.appointment_undo_no_show): the window, who, and when it is unsafe."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from opd.core import events
from opd.core.errors import Conflict, PermissionDenied
from opd.core.models import AuditEvent
from scheduling.models import Appointment, AppointmentStatus
from scheduling.selectors import waiting_line
from scheduling.services import (
    appointment_book,
    appointment_mark_no_show,
    appointment_set_priority,
    appointment_skip,
    appointment_start,
    appointment_undo_no_show,
    appointment_undo_skip,
    appointments_sweep_no_shows,
    queue_call_next,
)
from tests.consultations.factories import complete_visit
from tests.factories import PatientFactory, SlotFactory

from .queue_helpers import booked, waiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def no_show(actor, appt, **kwargs) -> Appointment:
    return appointment_mark_no_show(actor=actor, appointment=appt, **kwargs)


def test_it_puts_a_checked_in_patient_back_where_they_were(staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    called = queue_call_next(actor=doctor.user, doctor=doctor)
    assert called.pk == first.pk
    no_show(doctor.user, called)

    back = appointment_undo_no_show(actor=doctor.user, appointment=first)

    assert back.status == AppointmentStatus.CHECKED_IN
    assert back.no_show_at is None
    assert back.called_at is None
    assert back.token_number == first.token_number
    assert list(waiting_line(doctor, now=timezone.now()).values_list("pk", flat=True)) == [
        first.pk,
        second.pk,
    ]


def test_it_puts_a_booked_patient_back_to_booked(staff_user, doctor, department):
    appt = booked(staff_user, doctor, department, minutes=30)
    no_show(staff_user, appt)

    back = appointment_undo_no_show(actor=staff_user, appointment=appt)

    assert back.status == AppointmentStatus.BOOKED
    assert back.seat == appt.seat


def test_it_audits_the_undo_with_before_and_after(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)

    appointment_undo_no_show(actor=staff_user, appointment=appt)

    event = AuditEvent.objects.get(action="appointment.no_show_undone", object_id=str(appt.pk))
    assert event.actor_id == staff_user.pk
    assert event.data["before"]["status"] == "no_show"
    assert event.data["after"] == {"status": "checked_in", "no_show_at": None, "called_at": None}


def test_it_publishes_the_change_for_the_live_queues(
    staff_user, doctor, department, django_capture_on_commit_callbacks
):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)
    published: list[dict] = []

    def listen(**payload):
        published.append(payload)

    events.subscribe(events.QUEUE_CHANGED, listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            appointment_undo_no_show(actor=staff_user, appointment=appt)
    finally:
        events.unsubscribe(events.QUEUE_CHANGED, listen)

    assert [p["action"] for p in published] == ["no_show_undone"]
    assert published[0]["entry"]["state"] == "waiting"
    assert set(published[0]["versions"]) == {f"doctor:{doctor.pk}", f"clinic:{department.clinic_id}"}


@pytest.mark.parametrize(("minutes", "allowed"), [(4.9, True), (5, True), (5.01, False)])
def test_it_allows_undo_up_to_the_window_edge(staff_user, doctor, department, minutes, allowed):
    appt = waiting(staff_user, doctor, department)
    marked = no_show(staff_user, appt).no_show_at
    at = marked + dt.timedelta(minutes=minutes)

    if allowed:
        assert appointment_undo_no_show(actor=staff_user, appointment=appt, now=at).status == "checked_in"
    else:
        with pytest.raises(Conflict) as refused:
            appointment_undo_no_show(actor=staff_user, appointment=appt, now=at)
        assert refused.value.code == "undo_expired"
        assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_it_follows_the_undo_minutes_setting(settings, staff_user, doctor, department):
    settings.OPD_UNDO_MINUTES = 2
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)

    with (
        time_machine.travel(timezone.now() + dt.timedelta(minutes=2, seconds=5)),
        pytest.raises(Conflict) as refused,
    ):
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_expired"


def test_it_refuses_what_is_not_a_no_show(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_not_possible"


def test_it_refuses_twice(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)
    appointment_undo_no_show(actor=staff_user, appointment=appt)

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_not_possible"


def test_it_refuses_when_the_patient_was_booked_again_at_that_time(staff_user, doctor, department):
    appt = booked(staff_user, doctor, department, minutes=30)
    no_show(staff_user, appt)
    # The seat of a no-show stays taken; the patient is booked again into another seat of that slot.
    again = appointment_book(actor=staff_user, patient=appt.patient, slot=appt.slot)
    assert again.status == AppointmentStatus.BOOKED

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_not_possible"
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_it_refuses_when_the_patient_is_checked_in_again(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department, minutes=10)
    no_show(staff_user, appt)
    waiting(staff_user, doctor, department, minutes=45, patient=appt.patient)

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_not_possible"


def test_it_refuses_after_the_clinics_day_closed(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    marked = no_show(staff_user, appt).no_show_at
    # A minute after midnight in the clinic, still inside a (long) window.
    midnight = dt.datetime.combine(
        timezone.localtime(marked, department.clinic.tz).date() + dt.timedelta(days=1),
        dt.time(0, 1),
        tzinfo=department.clinic.tz,
    )
    Appointment.objects.filter(pk=appt.pk).update(no_show_at=midnight - dt.timedelta(minutes=2))

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt, now=midnight)
    assert refused.value.code == "undo_not_possible"


def test_it_never_undoes_the_sweeps_no_show(settings, staff_user, doctor, department):
    settings.OPD_NO_SHOW_GRACE_MINUTES = 0
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(hours=1)
    slot = SlotFactory(doctor=doctor, department=department, start=start)
    with time_machine.travel(start - dt.timedelta(minutes=30)):
        appt = appointment_book(
            actor=staff_user, patient=PatientFactory(organization=department.clinic.organization), slot=slot
        )
    assert appointments_sweep_no_shows() == 1

    with pytest.raises(Conflict) as refused:
        appointment_undo_no_show(actor=staff_user, appointment=appt)
    assert refused.value.code == "undo_not_possible"


def test_it_refuses_a_doctor_who_is_not_the_patients(staff_user, doctor, colleague, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)

    with pytest.raises(PermissionDenied):
        appointment_undo_no_show(actor=colleague.user, appointment=appt)


def test_it_refuses_staff_of_another_clinic(staff_user, other_clinic_staff, doctor, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)

    with pytest.raises(PermissionDenied):
        appointment_undo_no_show(actor=other_clinic_staff, appointment=appt)


def test_it_refuses_a_patient(staff_user, patient, doctor, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)

    with pytest.raises(PermissionDenied):
        appointment_undo_no_show(actor=patient.user, appointment=appt)


@pytest.mark.django_db(transaction=True)
def test_it_undoes_once_when_two_people_click_at_once(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    no_show(staff_user, appt)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def click(user):
        try:
            barrier.wait()
            appointment_undo_no_show(actor=user, appointment=appt)
            results.append("ok")
        except Conflict as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(u,)) for u in (staff_user, doctor.user)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["ok", "undo_not_possible"]
    assert AuditEvent.objects.filter(action="appointment.no_show_undone").count() == 1


# Undoing a skip


def test_it_puts_a_skipped_patient_back_in_their_place(staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    called = queue_call_next(actor=doctor.user, doctor=doctor)
    appointment_skip(actor=doctor.user, appointment=called)
    line = waiting_line(doctor, now=timezone.now()).values_list("pk", flat=True)
    assert list(line) == [second.pk, first.pk]

    back = appointment_undo_skip(actor=staff_user, appointment=first)

    assert back.queue_key == first.queue_key
    assert back.called_at is None
    assert list(line.all()) == [first.pk, second.pk]
    event = AuditEvent.objects.get(action="appointment.skip_undone", object_id=str(first.pk))
    assert event.data["after"]["queue_key"] == first.queue_key
    with pytest.raises(Conflict) as again:
        appointment_undo_skip(actor=staff_user, appointment=first)
    assert again.value.code == "undo_not_possible"


@pytest.mark.parametrize(("minutes", "code"), [(5, None), (5.01, "undo_expired")])
def test_it_allows_undoing_a_skip_up_to_the_window_edge(staff_user, doctor, department, minutes, code):
    appt = waiting(staff_user, doctor, department)
    waiting(staff_user, doctor, department)
    skipped = appointment_skip(actor=staff_user, appointment=appt)
    at = skipped.skipped_at + dt.timedelta(minutes=minutes)

    if code is None:
        assert appointment_undo_skip(actor=staff_user, appointment=appt, now=at).queue_key == appt.queue_key
    else:
        with pytest.raises(Conflict) as refused:
            appointment_undo_skip(actor=staff_user, appointment=appt, now=at)
        assert refused.value.code == code


def test_it_refuses_to_undo_a_skip_once_called_again_or_reprioritised(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department, minutes=10)
    other = waiting(staff_user, doctor, department, minutes=20)
    appointment_skip(actor=staff_user, appointment=appt)
    appointment_set_priority(actor=staff_user, appointment=appt, is_priority=True, reason="NEWS2 high")
    appointment_skip(actor=staff_user, appointment=other)
    seen = queue_call_next(actor=doctor.user, doctor=doctor)
    assert seen.pk == appt.pk
    complete_visit(actor=doctor.user, appointment=appointment_start(actor=doctor.user, appointment=seen))
    assert queue_call_next(actor=doctor.user, doctor=doctor).pk == other.pk

    for appointment in (appt, other):
        with pytest.raises(Conflict) as refused:
            appointment_undo_skip(actor=staff_user, appointment=appointment)
        assert refused.value.code == "undo_not_possible"


def test_it_refuses_an_undo_of_a_skip_to_other_clinics_and_patients(
    staff_user, other_clinic_staff, patient, colleague, doctor, department
):
    appt = appointment_skip(actor=staff_user, appointment=waiting(staff_user, doctor, department))

    for user in (other_clinic_staff, patient.user, colleague.user):
        with pytest.raises(PermissionDenied):
            appointment_undo_skip(actor=user, appointment=appt)
