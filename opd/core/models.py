from __future__ import annotations

import hashlib
import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin

from .json import EventJSONDecoder, EventJSONEncoder
from .phones import region_for_time_zone, validate_phone_region
from .token_cache import AuthStateQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known IANA time zone (for example Europe/London).")


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    STAFF = "staff", "Staff (reception, nurse)"
    DOCTOR = "doctor", "Doctor"
    PATIENT = "patient", "Patient"


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    require_second_factor = models.BooleanField(
        "require a second factor",
        default=True,
        help_text="Administrators, staff and doctors confirm each sign-in with a code from an authenticator "
        "app. Patients may choose to.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Whether a patient's "who opened my record" page names the staff who did, or only their role and
    # clinic. Off by default: the patient learns what kind of person read what and where (enough to ask
    # the clinic), and the clinic's staff are not exposed by name to every patient; the organization
    # turns it on where its policy (or its regulator) says patients get names.
    access_log_shows_names = models.BooleanField(
        default=False,
        help_text="Patients see the names of the staff who opened their record (otherwise role and clinic).",
    )

    # A bulk update bumps the cached API token checks (opd.core.token_cache).
    objects = AuthStateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PersonManager(UserManager.from_queryset(AuthStateQuerySet)):  # type: ignore[misc]  # a dynamic base
    """Django's user manager (create_user, create_superuser) over AuthStateQuerySet."""


class User(AbstractUser):  # type: ignore[django-manager-missing]  # django-otp devices are untyped
    """A person who signs in. Everyone but a superuser belongs to exactly one organization."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )

    # Django's manager (create_user, create_superuser); a bulk update bumps the cached API token checks
    # (opd.core.token_cache).
    objects: ClassVar[UserManager[User]] = PersonManager()
    # When the person proved they read mail at `email` (services.user_verify_email). Patients who sign
    # themselves up cannot book until it is set; accounts the clinic creates are verified by it.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="core_user_role_valid"),
        ]

    @property
    def is_clinic_staff(self) -> bool:
        """Runs a clinic's day: an administrator or staff member (reception, nurses), or a superuser."""
        return self.is_superuser or self.role in (Role.ADMIN, Role.STAFF)

    @property
    def is_doctor(self) -> bool:
        return self.role == Role.DOCTOR

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT and not self.is_superuser


class Clinic(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="clinics")
    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=40, help_text="Short code, unique within the organization.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # The country a patient's phone number is read in when typed without a country code (#17).
    phone_region = models.CharField(
        "phone number region",
        max_length=2,
        blank=True,
        validators=[validate_phone_region],
        help_text="Country of the phone numbers typed here without a country code (ISO 3166, e.g. GB, IN). "
        "Blank: the country of the clinic's time zone.",
    )
    email = models.EmailField(blank=True)
    cancellation_cutoff_minutes = models.PositiveIntegerField(
        default=120, help_text="Patients may cancel or reschedule up to this many minutes before the start."
    )
    checkin_opens_minutes = models.PositiveIntegerField(
        default=60, help_text="Reception may check a patient in from this many minutes before the start."
    )
    is_active = models.BooleanField(default=True)
    listed_publicly = models.BooleanField(
        default=False,
        help_text="Shown to visitors who are not signed in, when the deployment publishes listed clinics "
        "(OPD_PUBLIC_CLINICS = listed).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="core_clinic_code_unique_per_org"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def default_phone_region(self) -> str:
        return self.phone_region or region_for_time_zone(self.time_zone)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Department(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="departments")
    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=40)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["clinic_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "code"], name="core_department_code_unique_per_clinic"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.clinic.name})"


class Membership(models.Model):
    """Staff and doctors work at clinics through memberships; admins see their whole organization."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    # A capability of a staff member at this clinic, not a role: a nurse does everything reception does
    # (the queue, check-in, the waiting room) and also records triage vitals, at the clinics where they
    # work as one. Granted by membership_set_nurse (staff only: doctors record vitals anyway).
    is_nurse = models.BooleanField(
        "nurse",
        default=False,
        help_text="Records triage vitals and sees vitals, allergies and the visit reason of waiting patients "
        "at this clinic (never doctors' notes). Staff only.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="core_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.clinic}"


class AuditEvent(models.Model):
    """Who did what to which record, written by services inside the same transaction as the change.

    Append-only: database triggers refuse UPDATE and DELETE (migration core 0008), and each row carries
    `mac`, a keyed HMAC of its content made when it was written (opd.core.audit), which the sealer
    (opd.core.services.audit_chain) chains per organization in AuditSeal. Nothing may rewrite a row,
    so its foreign keys PROTECT: a person or a clinic with a history is deactivated, never deleted.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, null=True, blank=True)
    # PROTECT, not SET_NULL: nulling the actor would be an UPDATE of history (the trigger refuses it).
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The actor's role when it happened (a later role change must not rewrite history).
    actor_role = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # Where the record belongs, so an access log can be read per clinic and per patient (the patient's
    # own "who opened my record" page). A plain id for the patient: opd.core sits below `patients`.
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    patient_id = models.BigIntegerField(null=True, blank=True)
    # From the request that did it (opd.core.audit's request context); empty for beat and workers.
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Why, where one was required (break the glass) or given (a cancellation's reason).
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Set by opd.core.audit before the row is written (not auto_now_add, which would stamp it after the
    # MAC over it was made).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # HMAC-SHA256 (OPD_AUDIT_KEY) of every column but the id: someone with database access only cannot
    # forge or alter a row without this failing (opd.core.audit.event_mac).
    mac = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="core_audit_org_time"),
            models.Index(fields=["object_type", "object_id"], name="core_audit_object"),
            models.Index(fields=["patient_id", "created_at"], name="core_audit_patient_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id}"


class AuditChain(models.Model):
    """One row per hash chain (an organization's, or 0 for events with none): the row the sealer locks,
    so two sealers never give out one sequence number twice. Holds no evidence itself."""

    chain = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return f"audit chain {self.chain}"


class AuditSeal(models.Model):
    """Link `seq` of an organization's hash chain over its audit events, appended by the sealer.

    hash = HMAC-SHA256(OPD_AUDIT_KEY, prev_hash || the event's canonical content, its id included).
    Insert-only like AuditEvent (triggers). `chain` is the organization's id (0: events with no
    organization) rather than a nullable foreign key, so (chain, seq) is unique on MariaDB too, where
    NULLs never collide. `event_id` is a plain id, no constraint: a deleted event must leave its seal
    behind to be noticed, not block or cascade.
    """

    chain = models.BigIntegerField()
    seq = models.PositiveBigIntegerField()
    event_id = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="core_auditseal_chain_seq")]

    def __str__(self) -> str:
        return f"seal {self.chain}#{self.seq}"


class FlaggedAccess(AuditEvent):
    """The access log's break-the-glass rows, as the admin lists them for review (a proxy: same rows)."""

    class Meta:
        proxy = True
        verbose_name = "flagged access"
        verbose_name_plural = "flagged accesses"


class AccessGrant(models.Model):
    """A clinician's stated reason to open a patient's record without a care relationship (break the
    glass), good for OPD_BREAK_GLASS_MINUTES. The reason itself is in the access log (an AuditEvent
    `record.break_glass`, flagged for review); this row only spares the clinician a new question on each
    click. A plain patient id, as in AuditEvent: opd.core sits below `patients`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    patient_id = models.BigIntegerField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "patient_id", "expires_at"], name="core_grant_live")]

    def __str__(self) -> str:
        return f"{self.user_id} -> patient {self.patient_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class AccessReview(models.Model):
    """An administrator's review of a flagged access (a break-the-glass row of the access log). The
    access row never changes (append-only, chained); the review is this separate row."""

    event = models.OneToOneField(AuditEvent, on_delete=models.PROTECT, related_name="review")
    reviewer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"review of {self.event_id} by {self.reviewer_id}"


class IdempotencyRecord(models.Model):
    """The first successful answer to a request carrying an Idempotency-Key, replayed on retries."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "scope", "key"], name="core_idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class ApiToken(models.Model):
    """An API sign-in (`Authorization: Token <key>`), one per login, that expires and can be revoked.

    Only the SHA-256 digest of the key is stored: the key is shown once, to whoever signed in, and a
    copy of this table opens nothing. The key is 256 random bits, so a plain (unsalted, fast) digest is
    enough, and it lets a request find its token by one indexed lookup. `prefix` (the key's first
    characters) lets a person tell their tokens apart in a list without the list revealing them.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    name = models.CharField(max_length=200, blank=True, help_text="The client's User-Agent at sign-in.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Issued to a sign-in that gave a second-factor code. A person whose sign-in needs one cannot use a
    # token issued without it (opd.core.second_factor).
    second_factor = models.BooleanField(default=False)

    # A bulk update (revoking one or all of a person's tokens) bumps the cached checks (opd.core.token_cache).
    objects = AuthStateQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "revoked_at", "expires_at"], name="core_apitoken_live")]

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user_id}"


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A person's one-time recovery codes, a django-otp device so a code verifies a session like the app.

    django-otp's own static device keeps its codes in plain text; these are kept as SHA-256 digests (each
    code has 50 random bits, and the device's throttle slows guessing), so a copy of the table opens
    nothing. Verifying a code uses it up."""

    class Meta(Device.Meta):
        verbose_name = "recovery codes"

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: str) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        used = self.codes.filter(digest=recovery_code_digest(token), used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if used:
            self.throttle_reset(commit=False)
            self.save(update_fields=["throttling_failure_timestamp", "throttling_failure_count"])
        else:
            self.throttle_increment()
        return bool(used)


def recovery_code_digest(code: str) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).hexdigest()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "digest"], name="core_recoverycode_lookup")]

    def __str__(self) -> str:
        return f"recovery code of device {self.device_id}"


class OutboxEvent(models.Model):
    """A domain event, written by opd.core.events.publish in the transaction of the change it announces.

    The publishing process delivers it at once after the commit and marks it delivered a moment later
    (opd.core.outbox); a row still undelivered when `due_at` passes (the process died in between, or a
    subscriber failed) is delivered by the relay, so every committed change reaches its subscribers at
    least once. `due_at` is also the relay's lease and back-off: claiming a row moves it on."""

    event = models.CharField(max_length=100)
    payload = models.JSONField(encoder=EventJSONEncoder, decoder=EventJSONDecoder)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The relay's claim (delivered_at IS NULL AND due_at <= now ORDER BY due_at) and the prune
        # (delivered_at < cutoff) both read this index only.
        indexes = [models.Index(fields=["delivered_at", "due_at"], name="core_outbox_due")]
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"
