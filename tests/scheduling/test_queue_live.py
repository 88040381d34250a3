"""The live queue's services: order, call next, skip, recall, department pool, versions, waits, snapshots."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from opd.core import events
from opd.core.errors import Conflict, PermissionDenied
from scheduling.models import Appointment, AppointmentStatus, QueueVersion
from scheduling.selectors import clinic_queue_snapshot, doctor_queue_snapshot
from scheduling.services import (
    appointment_check_in,
    appointment_complete,
    appointment_mark_no_show,
    appointment_recall,
    appointment_set_priority,
    appointment_skip,
    appointment_start,
    queue_call_next,
)
from tests.consultations.factories import complete_visit

from .queue_helpers import booked, waiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def waiting_ids(doctor) -> list[int]:
    return [entry["appointment_id"] for entry in doctor_queue_snapshot(doctor)["waiting"]]


def see(doctor, appt, *, minutes: float | None = None) -> Appointment:
    """Start and complete a consultation (lasting `minutes`, ending now)."""
    now = timezone.now()
    started = appointment_start(
        actor=doctor.user, appointment=appt, now=now - dt.timedelta(minutes=minutes) if minutes else None
    )
    return complete_visit(actor=doctor.user, appointment=started, now=now if minutes else None)


# Order


def test_it_puts_priority_first_then_appointment_time_then_check_in_time(staff_user, doctor, department):
    later = waiting(staff_user, doctor, department, minutes=40)
    early_first = waiting(staff_user, doctor, department, minutes=20)
    early_second = waiting(staff_user, doctor, department, minutes=20)
    urgent = waiting(staff_user, doctor, department, minutes=50, priority="NEWS2 high (7)")

    assert waiting_ids(doctor) == [urgent.pk, early_first.pk, early_second.pk, later.pk]
    assert [e["position"] for e in doctor_queue_snapshot(doctor)["waiting"]] == [1, 2, 3, 4]


def test_it_moves_a_waiting_patient_flagged_as_priority_to_the_front(staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)

    appointment_set_priority(actor=staff_user, appointment=second, is_priority=True, reason="Chest pain")
    assert waiting_ids(doctor) == [second.pk, first.pk]

    appointment_set_priority(actor=staff_user, appointment=second, is_priority=False)
    assert waiting_ids(doctor) == [first.pk, second.pk]


def test_it_lists_only_checked_in_patients_as_waiting(staff_user, doctor, department):
    expected = booked(staff_user, doctor, department, minutes=30)
    here = waiting(staff_user, doctor, department, minutes=35)

    snapshot = doctor_queue_snapshot(doctor)

    assert waiting_ids(doctor) == [here.pk]
    assert [e["appointment_id"] for e in snapshot["expected"]] == [expected.pk]
    assert snapshot["waiting"][0]["token"] == here.token_number
    assert snapshot["waiting"][0]["state"] == "waiting"


# Call next


def test_it_calls_the_first_patient_waiting(staff_user, doctor, department):
    second = waiting(staff_user, doctor, department, minutes=30)
    first = waiting(staff_user, doctor, department, minutes=10)

    called = queue_call_next(actor=doctor.user, doctor=doctor)

    assert called.pk == first.pk
    assert called.called_at is not None
    snapshot = doctor_queue_snapshot(doctor)
    assert [e["appointment_id"] for e in snapshot["called"]] == [first.pk]
    assert snapshot["called"][0]["state"] == "called"
    assert waiting_ids(doctor) == [second.pk]


def test_it_refuses_to_call_while_a_patient_is_called_or_being_seen(staff_user, doctor, department):
    waiting(staff_user, doctor, department, minutes=10)
    waiting(staff_user, doctor, department, minutes=20)
    called = queue_call_next(actor=doctor.user, doctor=doctor)

    with pytest.raises(Conflict) as refused:
        queue_call_next(actor=doctor.user, doctor=doctor)
    assert refused.value.code == "already_serving"
    assert "already called" in refused.value.message

    appointment_start(actor=doctor.user, appointment=called)
    with pytest.raises(Conflict, match="still in consultation"):
        queue_call_next(actor=doctor.user, doctor=doctor)

    complete_visit(actor=doctor.user, appointment=called)
    assert queue_call_next(actor=doctor.user, doctor=doctor).pk != called.pk


def test_it_says_when_nobody_is_waiting(staff_user, doctor, department):
    booked(staff_user, doctor, department)  # booked, not arrived

    with pytest.raises(Conflict) as refused:
        queue_call_next(actor=doctor.user, doctor=doctor)

    assert refused.value.code == "queue_empty"


def test_a_doctor_calls_only_their_own_patients_without_the_pool(staff_user, doctor, colleague, department):
    theirs = waiting(staff_user, colleague, department, minutes=10)

    with pytest.raises(Conflict):
        queue_call_next(actor=doctor.user, doctor=doctor)
    with pytest.raises(PermissionDenied):
        queue_call_next(actor=doctor.user, doctor=colleague)

    assert Appointment.objects.get(pk=theirs.pk).called_at is None


def test_the_department_pool_takes_a_colleagues_patient_and_moves_the_appointment(
    staff_user, doctor, colleague, department
):
    mine = waiting(staff_user, doctor, department, minutes=40)
    theirs = waiting(staff_user, colleague, department, minutes=10)
    before = QueueVersion.objects.filter(queue=f"doctor:{colleague.pk}").get().last_value

    called = queue_call_next(actor=doctor.user, doctor=doctor, pool=True)

    assert called.pk == theirs.pk
    assert called.doctor_id == doctor.pk
    assert called.slot.doctor_id == colleague.pk  # the seat stays where it was booked
    assert waiting_ids(doctor) == [mine.pk]
    assert waiting_ids(colleague) == []
    # Both doctors' screens hear about it.
    assert QueueVersion.objects.get(queue=f"doctor:{colleague.pk}").last_value == before + 1
    # The doctor who took the patient now owns the visit.
    appointment_start(actor=doctor.user, appointment=called)


# Skip, recall, no-show


def test_skip_puts_the_called_patient_just_behind_the_next_one(staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    third = waiting(staff_user, doctor, department, minutes=30)
    queue_call_next(actor=doctor.user, doctor=doctor)

    skipped = appointment_skip(actor=doctor.user, appointment=first)

    assert skipped.called_at is None
    assert waiting_ids(doctor) == [second.pk, first.pk, third.pk]
    # Skipped again (from the waiting line), they go behind the one after them.
    appointment_skip(actor=staff_user, appointment=Appointment.objects.get(pk=first.pk))
    assert waiting_ids(doctor) == [second.pk, third.pk, first.pk]
    assert queue_call_next(actor=doctor.user, doctor=doctor).pk == second.pk


def test_skip_leaves_the_last_patient_first_but_no_longer_called(staff_user, doctor, department):
    only = waiting(staff_user, doctor, department)
    queue_call_next(actor=doctor.user, doctor=doctor)

    appointment_skip(actor=doctor.user, appointment=only)

    assert waiting_ids(doctor) == [only.pk]
    assert doctor_queue_snapshot(doctor)["called"] == []


def test_recall_announces_a_called_patient_again(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    with pytest.raises(Conflict):
        appointment_recall(actor=doctor.user, appointment=appt)
    called = queue_call_next(actor=doctor.user, doctor=doctor, now=timezone.now() - dt.timedelta(minutes=2))

    again = appointment_recall(actor=doctor.user, appointment=called)

    assert again.called_at > called.called_at
    assert again.status == AppointmentStatus.CHECKED_IN


def test_another_doctor_cannot_skip_or_recall_my_patient(staff_user, doctor, colleague, department):
    appt = waiting(staff_user, doctor, department)
    for action in (appointment_skip, appointment_recall, appointment_mark_no_show):
        with pytest.raises(PermissionDenied):
            action(actor=colleague.user, appointment=appt)


# Versions


def test_every_change_bumps_the_doctors_and_the_clinics_versions_after_commit(
    staff_user, doctor, department, clinic, django_capture_on_commit_callbacks
):
    published = []

    def listen(**payload):
        published.append(payload)

    appt = booked(
        staff_user, doctor, department
    )  # a booking for today: version 1 (its event is not run here)
    events.subscribe(events.QUEUE_CHANGED, listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            appointment_check_in(actor=staff_user, appointment=appt)
            called = queue_call_next(actor=doctor.user, doctor=doctor)
            appointment_start(actor=doctor.user, appointment=called)
    finally:
        events.unsubscribe(events.QUEUE_CHANGED, listen)

    assert [p["action"] for p in published] == ["checked_in", "called", "started"]
    assert [p["versions"] for p in published] == [
        {f"clinic:{clinic.pk}": n, f"doctor:{doctor.pk}": n} for n in (2, 3, 4)
    ]
    assert all(p["appointment_id"] == appt.pk for p in published)
    assert doctor_queue_snapshot(doctor)["version"] == 4
    assert clinic_queue_snapshot(clinic)["version"] == 4


def test_a_booking_for_today_changes_the_queue_too(
    staff_user, doctor, department, django_capture_on_commit_callbacks
):
    published = []

    def listen(**payload):
        published.append(payload)

    events.subscribe(events.APPOINTMENT_BOOKED, listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            today = booked(staff_user, doctor, department)
        with django_capture_on_commit_callbacks(execute=True):
            later = booked(
                staff_user, doctor, department, minutes=2 * 24 * 60
            )  # another day: not today's queue
    finally:
        events.unsubscribe(events.APPOINTMENT_BOOKED, listen)

    assert [(p["action"], p["appointment_id"]) for p in published] == [
        ("booked", today.pk),
        ("booked", later.pk),
    ]
    assert published[0]["versions"][f"doctor:{doctor.pk}"] == 1
    assert published[1]["versions"] == {}
    assert doctor_queue_snapshot(doctor)["version"] == 1


def test_a_refused_change_bumps_nothing(staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    before = list(QueueVersion.objects.order_by("queue").values_list("queue", "last_value"))

    with pytest.raises(Conflict):
        appointment_complete(actor=doctor.user, appointment=appt)

    assert list(QueueVersion.objects.order_by("queue").values_list("queue", "last_value")) == before


# Estimated waits


def test_waits_start_from_the_planned_slot_length(staff_user, doctor, department):
    for minutes in (10, 20, 30):
        waiting(staff_user, doctor, department, minutes=minutes)

    snapshot = doctor_queue_snapshot(doctor)

    assert snapshot["average_sample"] == 0
    assert snapshot["average_consultation_minutes"] == 15  # the slots' length
    assert [e["estimated_wait_minutes"] for e in snapshot["waiting"]] == [0, 15, 30]


def test_waits_follow_the_doctors_average_consultation_today(staff_user, doctor, department):
    see(doctor, waiting(staff_user, doctor, department, minutes=5), minutes=8)
    see(doctor, waiting(staff_user, doctor, department, minutes=6), minutes=12)
    with_doctor = waiting(staff_user, doctor, department, minutes=7)
    appointment_start(
        actor=doctor.user, appointment=with_doctor, now=timezone.now() - dt.timedelta(minutes=4)
    )
    for minutes in (20, 30):
        waiting(staff_user, doctor, department, minutes=minutes)

    snapshot = doctor_queue_snapshot(doctor)

    assert snapshot["average_sample"] == 2
    assert snapshot["average_consultation_minutes"] == 10
    assert snapshot["current"]["appointment_id"] == with_doctor.pk
    # About 6 minutes left with the current patient, then 10 per patient ahead.
    assert [e["estimated_wait_minutes"] for e in snapshot["waiting"]] == [6, 16]
    assert snapshot["counts"] == {
        "expected": 0,
        "waiting": 2,
        "called": 0,
        "in_consultation": 1,
        "completed": 2,
        "no_show": 0,
    }


# Snapshots


def test_the_clinic_snapshot_shows_tokens_and_rooms_but_never_a_patient(
    staff_user, doctor, department, clinic
):
    doctor.room = "Room 3"
    doctor.save(update_fields=["room"])
    first = waiting(staff_user, doctor, department, minutes=10, priority="NEWS2 high (7)")
    second = waiting(staff_user, doctor, department, minutes=20)
    queue_call_next(actor=doctor.user, doctor=doctor)

    snapshot = clinic_queue_snapshot(clinic)

    assert [e["token_label"] for e in snapshot["now_calling"]] == [f"GEN-{first.token_number}"]
    assert snapshot["now_calling"][0]["doctor"]["room"] == "Room 3"
    (line,) = snapshot["doctors"]
    assert [e["appointment_id"] for e in line["waiting"]] == [second.pk]
    text = json.dumps(snapshot)
    for appt in (first, second):
        patient = appt.patient
        for secret in (patient.first_name, patient.last_name, patient.mrn, "NEWS2"):
            assert secret not in text
    assert "patient" not in text


def test_the_snapshots_show_only_today(staff_user, doctor, department, clinic):
    today = waiting(staff_user, doctor, department)
    tomorrow = booked(staff_user, doctor, department, minutes=24 * 60 + 30)
    appointment_mark_no_show(actor=staff_user, appointment=tomorrow)

    snapshot = doctor_queue_snapshot(doctor)

    ids = {e["appointment_id"] for key in ("waiting", "expected", "done") for e in snapshot[key]}
    assert ids == {today.pk}


def test_check_in_gives_a_token_and_a_place_in_line(staff_user, doctor, department):
    appt = appointment_check_in(actor=staff_user, appointment=booked(staff_user, doctor, department))

    assert appt.token_number == 1
    assert appt.queue_key.startswith("1")
    assert doctor_queue_snapshot(doctor)["waiting"][0]["token_label"] == "GEN-1"
