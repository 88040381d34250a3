"""What a patient hears about their appointments: confirmations, cancellations, moves and reminders.

Scheduling publishes APPOINTMENT_BOOKED / CANCELLED / RESCHEDULED after its transaction commits (ids
only); notifications.apps subscribes the `appointment_notify_*` services below. Each reads the committed
appointment, writes its messages to the outbox (notification_enqueue, deduplicated), and the send tasks
are queued when that write commits. Delivering an event twice changes nothing.

Dedup keys: notifications.keys.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from opd.core.templatetags.opd import local_time
from patients.models import Patient
from scheduling.models import Appointment, AppointmentStatus, Slot

from .. import conf
from ..keys import appointment_key, version_prefix
from ..models import Channel, ClinicNotificationSettings, ContactPreference, Kind, Notification
from ..rendering import appointment_context, lead_text, render_message
from .delivery import _cancel_queued, new_notification, notifications_enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    channel: str
    to: str
    user_id: int | None


def recipients_for(patient: Patient) -> list[Recipient]:
    """The channels a patient is reached on, honouring their preferences (ContactPreference)."""
    pref = ContactPreference.objects.filter(patient=patient).first() or ContactPreference(patient=patient)
    direct = []
    if pref.email_enabled and patient.email:
        direct.append(Recipient(Channel.EMAIL, patient.email, patient.user_id))
    if pref.sms_enabled and patient.phone:
        direct.append(Recipient(Channel.SMS, patient.phone, patient.user_id))
    preferred = [r for r in direct if r.channel == pref.preferred_channel]
    out = preferred or direct
    if pref.in_app_enabled and patient.user_id:
        out.append(Recipient(Channel.IN_APP, "", patient.user_id))
    return out


def lead_minutes_for(clinic_id: int) -> list[int]:
    settings_row = ClinicNotificationSettings.objects.filter(clinic_id=clinic_id).first()
    leads = settings_row.reminder_lead_minutes if settings_row else conf.default_lead_minutes()
    return sorted({int(m) for m in leads}, reverse=True)


def _load(appointment_id: int) -> Appointment | None:
    return (
        Appointment.objects.select_related("patient", "clinic", "department", "doctor__user")
        .filter(pk=appointment_id)
        .first()
    )


def _version_prefix(appointment: Appointment) -> str:
    return version_prefix(appointment.pk, appointment.reschedule_count)


def _messages(
    appointment: Appointment,
    recipients: list[Recipient],
    *,
    kind: str,
    key: str,
    context: dict[str, Any],
    scheduled_for: dt.datetime | None = None,
    lead_minutes: int | None = None,
) -> list[Notification]:
    """One unsaved message per recipient channel."""
    rows = []
    for recipient in recipients:
        rendered = render_message(kind=kind, channel=recipient.channel, context=context)
        notification = new_notification(
            organization_id=appointment.organization_id,
            clinic_id=appointment.clinic_id,
            patient_id=appointment.patient_id,
            user_id=recipient.user_id,
            appointment_id=appointment.pk,
            channel=recipient.channel,
            kind=kind,
            to=recipient.to,
            subject=rendered.subject,
            body=rendered.body,
            body_html=rendered.body_html,
            dedup_key=f"{key}:{recipient.channel}",
            lead_minutes=lead_minutes,
            scheduled_for=scheduled_for,
        )
        rows.append(notification)
    return rows


def _reminders(appointment: Appointment, recipients: list[Recipient], now: dt.datetime) -> list[Notification]:
    rows = []
    for minutes in lead_minutes_for(appointment.clinic_id):
        send_at = appointment.start - dt.timedelta(minutes=minutes)
        if send_at <= now:
            continue
        rows += _messages(
            appointment,
            recipients,
            kind=Kind.REMINDER,
            key=f"{_version_prefix(appointment)}reminder:{minutes}",
            context=appointment_context(appointment, lead_text=lead_text(minutes)),
            scheduled_for=send_at,
            lead_minutes=minutes,
        )
    return rows


def reminders_plan_for_appointment(
    *, appointment_id: int, now: dt.datetime | None = None
) -> list[Notification]:
    """Queue the reminders of a booked appointment at its clinic's lead times (default a day and two hours
    before). Lead times already past are skipped: a booking made an hour ahead gets its confirmation only.
    Idempotent: planning twice finds the same keys."""
    appointment = _load(appointment_id)
    if appointment is None or appointment.status != AppointmentStatus.BOOKED:
        return []
    recipients = recipients_for(appointment.patient)
    return notifications_enqueue(rows=_reminders(appointment, recipients, now or timezone.now()))


def reminders_cancel_for_appointment(*, appointment_id: int, keep_current: bool = False) -> int:
    """Cancel an appointment's queued reminders; with keep_current, only those planned for an earlier
    time (another reschedule version). Returns how many were cancelled."""
    qs = Notification.objects.filter(appointment_id=appointment_id, kind=Kind.REMINDER)
    reason = "The appointment was cancelled."
    if keep_current:
        appointment = Appointment.objects.filter(pk=appointment_id).only("reschedule_count").first()
        if appointment is not None:
            qs = qs.filter(~Q(dedup_key__startswith=_version_prefix(appointment)))
        reason = "The appointment was moved."
    return _cancel_queued(queryset=qs, reason=reason)


def appointment_notify_booked(*, appointment_id: int, **_event: Any) -> list[Notification]:
    """A confirmation on each of the patient's channels, and the reminders. Planned by a worker after the
    booking; an appointment cancelled by then gets neither (its cancellation says what happened)."""
    appointment = _load(appointment_id)
    if appointment is None or appointment.status == AppointmentStatus.CANCELLED:
        return []
    recipients = recipients_for(appointment.patient)
    rows = _messages(
        appointment,
        recipients,
        kind=Kind.BOOKING_CONFIRMATION,
        key=appointment_key(appointment.pk, "booking_confirmation"),
        context=appointment_context(appointment),
    )
    if appointment.status == AppointmentStatus.BOOKED:
        rows += _reminders(appointment, recipients, timezone.now())
    return notifications_enqueue(rows=rows)


def appointment_notify_cancelled(*, appointment_id: int, **_event: Any) -> list[Notification]:
    """APPOINTMENT_CANCELLED: the queued reminders are cancelled and the patient is told."""
    with transaction.atomic():
        appointment = _load(appointment_id)
        if appointment is None:
            return []
        reminders_cancel_for_appointment(appointment_id=appointment.pk)
        if appointment.status != AppointmentStatus.CANCELLED:
            return []  # a stale event (the row changed again since); nothing to announce
        rows = _messages(
            appointment,
            recipients_for(appointment.patient),
            kind=Kind.CANCELLATION,
            key=appointment_key(appointment.pk, "cancellation"),
            context=appointment_context(appointment, reason=appointment.cancellation_reason),
        )
        return notifications_enqueue(rows=rows)


def appointment_notify_rescheduled(
    *, appointment_id: int, previous_slot_id: int | None = None, **_event: Any
) -> list[Notification]:
    """APPOINTMENT_RESCHEDULED: reminders for the old time are cancelled, the patient is told the new time,
    and reminders are planned for it."""
    with transaction.atomic():
        appointment = _load(appointment_id)
        if appointment is None:
            return []
        reminders_cancel_for_appointment(appointment_id=appointment.pk, keep_current=True)
        if appointment.status != AppointmentStatus.BOOKED:
            return []
        previous = Slot.objects.filter(pk=previous_slot_id).values_list("start", flat=True).first()  # type: ignore[misc]  # no previous slot: matches no row
        context = appointment_context(
            appointment, previous_when=local_time(previous, appointment.clinic) if previous else ""
        )
        recipients = recipients_for(appointment.patient)
        rows = _messages(
            appointment,
            recipients,
            kind=Kind.RESCHEDULE,
            key=f"{_version_prefix(appointment)}reschedule",
            context=context,
        )
        rows += _reminders(appointment, recipients, timezone.now())
        return notifications_enqueue(rows=rows)
