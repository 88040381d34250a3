"""What patients hear when they book, cancel or move an appointment, and their reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from notifications.models import Channel, Kind, Notification, PreferredChannel, Status
from notifications.services import (
    appointment_notify_booked,
    clinic_notification_settings_set,
    contact_preference_set,
    notification_send,
    notifications_dispatch_due,
    reminders_plan_for_appointment,
)
from opd.core import events
from opd.core.errors import ValidationFailed
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule
from tests.conftest import future_slot
from tests.factories import SlotFactory

from .conftest import sms_lines

pytestmark = pytest.mark.django_db


def kinds_by_channel(appointment, kind):
    return sorted(
        Notification.objects.filter(appointment=appointment, kind=kind).values_list("channel", flat=True)
    )


def come_due(queryset) -> None:
    """Time passes until these rows are due (their next attempt moves to now)."""
    queryset.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def test_it_confirms_a_booking_once_on_each_of_the_patients_channels(
    book, patient, doctor, department, sms_dir
):
    appointment = book(patient, future_slot(doctor, department))

    confirmations = Notification.objects.filter(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION)
    assert sorted(confirmations.values_list("channel", flat=True)) == ["email", "in_app", "sms"]
    assert set(confirmations.values_list("status", flat=True)) == {Status.SENT}
    assert [m.to for m in mail.outbox] == [[patient.email]]
    assert len(sms_lines(sms_dir)) == 1


def test_it_says_when_and_where_in_the_clinics_time_zone(book, patient, doctor, department, clinic):
    appointment = book(patient, future_slot(doctor, department))

    email = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION, channel="email")
    sms = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION, channel="sms")
    local = timezone.localtime(appointment.start, clinic.tz)
    when = f"{local:%a %d %b %Y, %H:%M} {clinic.time_zone}"
    assert email.subject == f"Appointment booked: {when}"
    assert "Dear Ada," in email.body
    assert when in email.body
    assert doctor.display_name in email.body
    assert email.body_html.startswith("<!doctype html>")
    assert when in email.body_html
    assert "\n" not in sms.body
    short = f"{local:%a %d %b %H:%M %Z}"  # the zone's abbreviation keeps the SMS to one segment
    assert sms.body.startswith(f"{clinic.name}: booked {short}, {doctor.display_name}. Manage: http")


def test_it_plans_reminders_at_the_default_lead_times(book, patient, doctor, department):
    appointment = book(patient, future_slot(doctor, department))

    reminders = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    assert reminders.count() == 6  # a day and two hours before, on three channels
    for reminder in reminders:
        assert reminder.status == Status.QUEUED
        assert reminder.scheduled_for == appointment.start - dt.timedelta(minutes=reminder.lead_minutes)
    assert sorted({r.lead_minutes for r in reminders}) == [120, 1440]
    day_before = reminders.get(lead_minutes=1440, channel=Channel.EMAIL)
    assert day_before.subject.startswith("Reminder: appointment tomorrow")
    assert day_before.dedup_key == f"appt:{appointment.pk}:v0:reminder:1440:email"


def test_planning_reminders_again_finds_the_same_ones(book, patient, doctor, department):
    appointment = book(patient, future_slot(doctor, department))
    planned = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    before = sorted(planned.values_list("pk", flat=True))

    again = reminders_plan_for_appointment(appointment_id=appointment.pk)

    assert sorted(n.pk for n in again) == before
    assert sorted(planned.values_list("pk", flat=True)) == before


def test_it_uses_the_clinics_own_lead_times(book, patient, doctor, department, clinic, admin_user):
    clinic_notification_settings_set(actor=admin_user, clinic=clinic, reminder_lead_minutes=[60, 2880])

    appointment = book(patient, future_slot(doctor, department))

    leads = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER, channel="sms")
    assert sorted(leads.values_list("lead_minutes", flat=True)) == [60, 2880]


def test_it_refuses_nonsense_lead_times(clinic, admin_user):
    with pytest.raises(ValidationFailed):
        clinic_notification_settings_set(actor=admin_user, clinic=clinic, reminder_lead_minutes=[0])
    with pytest.raises(ValidationFailed):
        clinic_notification_settings_set(actor=admin_user, clinic=clinic, reminder_lead_minutes=[60, 60])


def test_it_skips_reminders_whose_time_has_already_passed(book, patient, doctor, department, time_machine):
    # The clock stands still and the slot starts exactly 12 hours on: the day-before reminder's time has
    # passed, the two-hours-before one's has not. (future_slot's start moves 20 minutes later with every
    # call in the process: deep into a full run, "in 12 hours" was more than a day away.)
    now = timezone.now().replace(microsecond=0)
    time_machine.move_to(now, tick=False)
    slot = SlotFactory(doctor=doctor, department=department, start=now + dt.timedelta(hours=12), capacity=4)
    appointment = book(patient, slot)

    leads = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER, channel="sms")
    assert list(leads.values_list("lead_minutes", flat=True)) == [120]


def test_it_honours_a_preferred_channel(book, patient, doctor, department, staff_user):
    contact_preference_set(
        actor=staff_user,
        patient=patient,
        email_enabled=True,
        sms_enabled=True,
        in_app_enabled=True,
        preferred_channel=PreferredChannel.SMS,
    )

    appointment = book(patient, future_slot(doctor, department))

    assert kinds_by_channel(appointment, Kind.BOOKING_CONFIRMATION) == ["in_app", "sms"]
    assert mail.outbox == []


def test_it_honours_opt_outs(book, patient, doctor, department, staff_user):
    contact_preference_set(
        actor=staff_user, patient=patient, email_enabled=True, sms_enabled=False, in_app_enabled=False
    )

    appointment = book(patient, future_slot(doctor, department))

    assert kinds_by_channel(appointment, Kind.BOOKING_CONFIRMATION) == ["email"]
    assert kinds_by_channel(appointment, Kind.REMINDER) == ["email", "email"]


def test_it_falls_back_when_the_preferred_channel_has_no_address(
    book, patient, doctor, department, staff_user
):
    contact_preference_set(
        actor=staff_user,
        patient=patient,
        email_enabled=True,
        sms_enabled=True,
        in_app_enabled=False,
        preferred_channel=PreferredChannel.SMS,
    )
    patient.phone = ""
    patient.save(update_fields=["phone"])

    appointment = book(patient, future_slot(doctor, department))

    assert kinds_by_channel(appointment, Kind.BOOKING_CONFIRMATION) == ["email"]


def test_it_refuses_a_preferred_channel_that_is_switched_off(patient, staff_user):
    with pytest.raises(ValidationFailed):
        contact_preference_set(
            actor=staff_user,
            patient=patient,
            email_enabled=False,
            sms_enabled=True,
            in_app_enabled=True,
            preferred_channel=PreferredChannel.EMAIL,
        )


def test_an_event_delivered_twice_writes_each_message_once(book, patient, doctor, department, committed):
    appointment = book(patient, future_slot(doctor, department))
    before = Notification.objects.count()

    with committed():
        appointment_notify_booked(appointment_id=appointment.pk)

    assert Notification.objects.count() == before
    assert len(mail.outbox) == 1


def test_cancelling_cancels_the_reminders_and_tells_the_patient(
    book, patient, doctor, department, staff_user, committed, sms_dir
):
    appointment = book(patient, future_slot(doctor, department))

    with committed():
        appointment_cancel(actor=staff_user, appointment=appointment, reason="Doctor unwell")

    reminders = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    assert set(reminders.values_list("status", flat=True)) == {Status.CANCELLED}
    cancellation = Notification.objects.get(appointment=appointment, kind=Kind.CANCELLATION, channel="email")
    assert cancellation.status == Status.SENT
    assert "Reason: Doctor unwell" in cancellation.body
    come_due(reminders)
    with committed():
        assert notifications_dispatch_due() == []
    assert [line["kind"] for line in sms_lines(sms_dir)] == ["booking_confirmation", "cancellation"]


def test_a_reminder_of_a_cancelled_appointment_is_not_sent_even_if_the_event_was_missed(
    book, patient, doctor, department, staff_user, sms_dir
):
    appointment = book(patient, future_slot(doctor, department))
    # Cancelled without the event reaching us (the subscriber was down): reminders stay queued.
    appointment_cancel(actor=staff_user, appointment=appointment)
    reminder = Notification.objects.get(
        appointment=appointment, kind=Kind.REMINDER, lead_minutes=1440, channel="sms"
    )
    come_due(Notification.objects.filter(pk=reminder.pk))

    assert notification_send(notification_id=reminder.pk).status == Status.CANCELLED

    reminder.refresh_from_db()
    assert reminder.last_error == "The appointment is no longer booked."
    assert [line["kind"] for line in sms_lines(sms_dir)] == ["booking_confirmation"]


def test_rescheduling_replans_the_reminders_and_tells_the_patient(
    book, patient, doctor, department, staff_user, committed
):
    appointment = book(patient, future_slot(doctor, department, days=3))
    new_slot = future_slot(doctor, department, days=5)

    with committed():
        appointment_reschedule(actor=staff_user, appointment=appointment, slot=new_slot)

    reminders = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER, channel="sms")
    old = reminders.filter(dedup_key__contains=":v0:")
    new = reminders.filter(dedup_key__contains=":v1:")
    assert set(old.values_list("status", flat=True)) == {Status.CANCELLED}
    assert set(new.values_list("status", flat=True)) == {Status.QUEUED}
    assert sorted(r.scheduled_for for r in new) == [
        new_slot.start - dt.timedelta(minutes=1440),
        new_slot.start - dt.timedelta(minutes=120),
    ]
    moved = Notification.objects.get(appointment=appointment, kind=Kind.RESCHEDULE, channel="email")
    assert moved.status == Status.SENT
    assert "Your appointment has moved from" in moved.body


def test_a_reminder_for_the_earlier_time_of_a_moved_appointment_is_not_sent(
    book, patient, doctor, department, staff_user, sms_dir
):
    appointment = book(patient, future_slot(doctor, department, days=3))
    old = Notification.objects.get(
        appointment=appointment, kind=Kind.REMINDER, lead_minutes=1440, channel="sms"
    )
    # Moved without the event reaching us: the reminder for the old time is still queued.
    appointment_reschedule(
        actor=staff_user, appointment=appointment, slot=future_slot(doctor, department, days=5)
    )
    come_due(Notification.objects.filter(pk=old.pk))

    assert notification_send(notification_id=old.pk).status == Status.CANCELLED

    old.refresh_from_db()
    assert old.last_error.startswith("The appointment was moved")
    assert [line["kind"] for line in sms_lines(sms_dir)] == ["booking_confirmation"]


def test_a_due_reminder_is_sent_once(book, patient, doctor, department, committed, sms_dir):
    appointment = book(patient, future_slot(doctor, department))
    reminders = Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER, lead_minutes=1440)
    come_due(reminders)

    with committed():
        first = notifications_dispatch_due()
    with committed():
        second = notifications_dispatch_due()

    assert len(first) == 3
    assert second == []
    assert set(reminders.values_list("status", flat=True)) == {Status.SENT}
    assert [line["kind"] for line in sms_lines(sms_dir)] == ["booking_confirmation", "reminder"]
    assert mail.outbox[-1].subject.startswith("Reminder: appointment tomorrow")


def test_a_reminder_of_an_appointment_that_already_started_is_cancelled(
    book, patient, doctor, department, sms_dir
):
    appointment = book(patient, future_slot(doctor, department))
    reminder = Notification.objects.get(
        appointment=appointment, kind=Kind.REMINDER, lead_minutes=120, channel="sms"
    )
    type(appointment).objects.filter(pk=appointment.pk).update(
        start=timezone.now() - dt.timedelta(minutes=5), end=timezone.now() + dt.timedelta(minutes=10)
    )
    come_due(Notification.objects.filter(pk=reminder.pk))

    assert notification_send(notification_id=reminder.pk).status == Status.CANCELLED


def test_a_failing_subscriber_does_not_undo_the_booking(
    patient, doctor, department, staff_user, committed, monkeypatch
):
    def broken(**_):
        raise RuntimeError("templates missing")

    monkeypatch.setitem(events._subscribers, events.APPOINTMENT_BOOKED, [broken])
    monkeypatch.setitem(events._after_response, events.APPOINTMENT_BOOKED, [])

    with committed():
        appointment = appointment_book(
            actor=staff_user, patient=patient, slot=future_slot(doctor, department)
        )

    appointment.refresh_from_db()
    assert appointment.status == "booked"
