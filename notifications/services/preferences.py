"""Patients' contact preferences and clinics' reminder lead times."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from opd.core.audit import audit
from opd.core.errors import ValidationFailed
from opd.core.models import Clinic, User
from patients.models import Patient

from ..models import ClinicNotificationSettings, ContactPreference, PreferredChannel, validate_lead_minutes


def contact_preference_set(
    *,
    actor: User | None,
    patient: Patient,
    email_enabled: bool,
    sms_enabled: bool,
    in_app_enabled: bool,
    preferred_channel: str = PreferredChannel.ALL,
) -> ContactPreference:
    """Record how a patient wants to be contacted; later messages follow it (queued ones keep their
    channel: they were written for it)."""
    if preferred_channel not in PreferredChannel.values:
        raise ValidationFailed(
            "Unknown preferred channel.", fields={"preferred_channel": "Choose email, SMS or every channel."}
        )
    if preferred_channel == PreferredChannel.EMAIL and not email_enabled:
        raise ValidationFailed(
            "The preferred channel is switched off.", fields={"preferred_channel": "Email is switched off."}
        )
    if preferred_channel == PreferredChannel.SMS and not sms_enabled:
        raise ValidationFailed(
            "The preferred channel is switched off.", fields={"preferred_channel": "SMS is switched off."}
        )
    values = {
        "email_enabled": email_enabled,
        "sms_enabled": sms_enabled,
        "in_app_enabled": in_app_enabled,
        "preferred_channel": preferred_channel,
    }
    with transaction.atomic():
        pref, _ = ContactPreference.objects.select_for_update().get_or_create(
            patient=patient, defaults=values
        )
        for name, value in values.items():
            setattr(pref, name, value)
        pref.save()
        audit(
            actor=actor,
            action="notifications.contact_preference_set",
            obj=pref,
            organization_id=patient.organization_id,
            **values,
        )
    return pref


def clinic_notification_settings_set(
    *, actor: User | None, clinic: Clinic, reminder_lead_minutes: list[int]
) -> ClinicNotificationSettings:
    """Set a clinic's reminder lead times. Applies to reminders planned from now on (new bookings and
    moves); reminders already queued keep their time."""
    try:
        validate_lead_minutes(reminder_lead_minutes)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"reminder_lead_minutes": exc.messages}) from exc
    leads = sorted(reminder_lead_minutes, reverse=True)
    with transaction.atomic():
        row, _ = ClinicNotificationSettings.objects.select_for_update().get_or_create(
            clinic=clinic, defaults={"reminder_lead_minutes": leads}
        )
        row.reminder_lead_minutes = leads
        row.save()
        audit(
            actor=actor,
            action="notifications.clinic_settings_set",
            obj=row,
            organization_id=clinic.organization_id,
            reminder_lead_minutes=leads,
        )
    return row


def contact_preference_merge(merge: Patient, keep: Patient) -> int:
    """patient_merge's mover for contact preferences (one per patient): the record that stays keeps its
    own; when it has none, it takes the merged record's (the patient said how to reach them). Runs inside
    the merge's transaction, with both patients locked."""
    if ContactPreference.objects.filter(patient=keep).exists():
        return 0
    return ContactPreference.objects.filter(patient=merge).update(patient=keep)
