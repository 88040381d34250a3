from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from opd.core.fields import BlindIndexField, EncryptedCharField
from opd.core.models import Clinic, Organization
from patients.models import Patient
from scheduling.models import Appointment

from . import conf

MAX_LEAD_MINUTES = 30 * 24 * 60
MAX_LEAD_TIMES = 6


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"


class Kind(models.TextChoices):
    BOOKING_CONFIRMATION = "booking_confirmation", "Booking confirmation"
    CANCELLATION = "cancellation", "Cancellation"
    RESCHEDULE = "reschedule", "Reschedule"
    REMINDER = "reminder", "Reminder"
    REPORT = "report", "Report"


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A worker may take a row in these states once its next_attempt_at has come (see services.delivery).
OPEN_STATUSES = (Status.QUEUED, Status.SENDING)


class Notification(models.Model):
    """One message to one recipient on one channel: rendered once, sent at most once at a time.

    `dedup_key` names the message (appointment + kind + channel, + lead time for reminders); it is unique,
    so however often an event is delivered or a task retried, the message exists once. The delivery state
    machine and the lease are described in notifications.services.delivery.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The recipient: a patient (their user too for in-app), or a user (staff reports).
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # Email address or phone number as they were when the message was written; empty for in-app.
    # Encrypted at rest (a copy of the patient's contact details); found through its blind index.
    to = EncryptedCharField(max_length=254, blank=True)
    to_index = BlindIndexField(source="to", kind="address")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    body_html = models.TextField(blank=True)
    dedup_key = models.CharField(max_length=190, unique=True)
    lead_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Reminders: minutes before.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # When the message is meant to go out (the reminder time; creation for immediate messages).
    scheduled_for = models.DateTimeField()
    # When a worker should next look at the row: the due time or the retry time while queued, the lease
    # expiry while sending; empty once the row is final. The dispatcher's one indexed query reads it.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a send task was last put on the queue for this row; the dispatcher enqueues again only if no
    # worker took the row well after that (a lost message, a dead worker).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Identifies the worker attempt holding the lease; only it may record the outcome.
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # In-app messages: when the recipient marked it read in the portal's inbox (empty: unread).
    read_at = models.DateTimeField(null=True, blank=True)
    resend_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="resends"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="notifications_status_valid"),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="notifications_channel_valid"
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="notifications_kind_valid"),
            models.CheckConstraint(
                condition=Q(patient__isnull=False) | Q(user__isnull=False),
                name="notifications_has_recipient",
            ),
            models.CheckConstraint(
                condition=~Q(channel=Channel.IN_APP) | Q(user__isnull=False),
                name="notifications_in_app_has_user",
            ),
            models.CheckConstraint(
                condition=~Q(channel__in=[Channel.EMAIL, Channel.SMS]) | ~Q(to=""),
                name="notifications_has_address",
            ),
            # Open rows always have a time to be looked at; sent rows say when.
            models.CheckConstraint(
                condition=~Q(status__in=OPEN_STATUSES) | Q(next_attempt_at__isnull=False),
                name="notifications_open_has_next_attempt",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.SENT) | Q(sent_at__isnull=False),
                name="notifications_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.SENDING) | ~Q(claim_token=""),
                name="notifications_sending_is_claimed",
            ),
        ]
        indexes = [
            # The dispatcher: status IN (queued, sending) AND next_attempt_at <= now.
            models.Index(fields=["status", "next_attempt_at"], name="notifications_due"),
            models.Index(fields=["appointment", "kind", "status"], name="notifications_appt_kind"),
            models.Index(fields=["organization", "created_at"], name="notifications_org_time"),
            models.Index(fields=["clinic", "created_at"], name="notifications_clinic_time"),
            models.Index(fields=["patient", "created_at"], name="notifications_patient_time"),
            models.Index(fields=["user", "created_at"], name="notifications_user_time"),
            # The inbox's unread count on every portal page: user, channel, status, read_at.
            models.Index(fields=["user", "channel", "status", "read_at"], name="notifications_inbox"),
            models.Index(fields=["organization", "to_index"], name="notifications_org_to_index"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.get_channel_display()} to {self.to or self.user_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class PreferredChannel(models.TextChoices):
    ALL = "", "Every enabled channel"
    EMAIL = Channel.EMAIL.value, "Email"
    SMS = Channel.SMS.value, "SMS"


class ContactPreference(models.Model):
    """How a patient wants to hear from the clinic. No row: every channel with an address.

    Email and SMS go out on each enabled channel, or only on the preferred one when it is set and usable
    (enabled, with an address). In-app messages reach patients who have an account and leave it enabled.
    """

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="contact_preference")
    email_enabled = models.BooleanField("email", default=True)
    sms_enabled = models.BooleanField("SMS", default=True)
    in_app_enabled = models.BooleanField("in-app", default=True)
    preferred_channel = models.CharField(
        max_length=8, choices=PreferredChannel.choices, default=PreferredChannel.ALL, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(preferred_channel__in=PreferredChannel.values),
                name="notifications_preferred_channel_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Contact preferences of {self.patient}"


def validate_lead_minutes(value) -> None:
    if not isinstance(value, list) or not all(isinstance(m, int) and not isinstance(m, bool) for m in value):
        raise ValidationError("A list of whole numbers of minutes, for example [1440, 120].")
    if len(value) > MAX_LEAD_TIMES:
        raise ValidationError(f"At most {MAX_LEAD_TIMES} reminders per appointment.")
    if any(m < 1 or m > MAX_LEAD_MINUTES for m in value):
        raise ValidationError(f"Each lead time is between 1 and {MAX_LEAD_MINUTES} minutes (30 days).")
    if len(set(value)) != len(value):
        raise ValidationError("Each lead time once.")


def default_lead_minutes() -> list[int]:
    return conf.default_lead_minutes()


class ClinicNotificationSettings(models.Model):
    """A clinic's reminder lead times (minutes before the start). No row: OPD_REMINDER_LEAD_MINUTES."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="notification_settings")
    reminder_lead_minutes = models.JSONField(
        default=default_lead_minutes,
        validators=[validate_lead_minutes],
        help_text="Minutes before the start, for example [1440, 120] for a day and two hours before. "
        "[] sends no reminders.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinic notification settings"
        verbose_name_plural = "clinic notification settings"

    def __str__(self) -> str:
        return f"Notification settings of {self.clinic}"
