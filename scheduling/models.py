from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from opd.core.clinic_time import in_clinic_time
from opd.core.models import Clinic, Department, Organization
from patients.models import Patient


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    SUSPENDED = "suspended", "Suspended"


class Doctor(models.Model):
    """A doctor's professional profile. Only approved doctors get slots."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="doctor")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="doctors")
    departments = models.ManyToManyField(Department, related_name="doctors", blank=True)
    specialization = models.CharField(max_length=120)
    license_number = models.CharField(max_length=64)
    room = models.CharField(
        max_length=40,
        blank=True,
        help_text="Consulting room or desk, shown on the waiting-room display (for example “Room 3”).",
    )
    approval_status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__last_name", "user__first_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "license_number"], name="scheduling_doctor_license_unique_per_org"
            ),
            models.CheckConstraint(
                condition=Q(approval_status__in=ApprovalStatus.values), name="scheduling_doctor_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Dr {self.user.get_full_name() or self.user.username}"

    @property
    def display_name(self) -> str:
        return str(self)


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class AvailabilityRule(models.Model):
    """A weekly session in clinic local time: every <weekday> from start to end, in one department."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="availability_rules")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()
    slot_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(5), MaxValueValidator(240)]
    )
    capacity = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["doctor_id", "weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="scheduling_rule_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="scheduling_rule_weekday"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="scheduling_rule_valid_range",
            ),
            models.CheckConstraint(condition=Q(slot_minutes__gte=5), name="scheduling_rule_slot_minutes"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="scheduling_rule_capacity"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"


class ExceptionKind(models.TextChoices):
    LEAVE = "leave", "Leave or holiday (removes time)"
    EXTRA = "extra", "Extra session (adds time)"


class AvailabilityException(models.Model):
    """One date that differs from the weekly rules. Leave without times removes the whole day."""

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="availability_exceptions")
    kind = models.CharField(max_length=8, choices=ExceptionKind.choices)
    date = models.DateField()
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Required for an extra session: where it takes place.",
    )
    slot_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(5), MaxValueValidator(240)]
    )
    capacity = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["doctor_id", "date", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(start_time__isnull=True) & Q(end_time__isnull=True))
                | Q(end_time__gt=F("start_time")),
                name="scheduling_exception_times",
            ),
            models.CheckConstraint(
                condition=~Q(kind="extra") | (Q(department__isnull=False) & Q(start_time__isnull=False)),
                name="scheduling_exception_extra_has_place_and_time",
            ),
        ]
        indexes = [models.Index(fields=["doctor", "date"], name="scheduling_exc_doctor_date")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date}"


class Slot(models.Model):
    """A bookable stretch of a doctor's time with a number of seats. Times are UTC; `date` is local."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="slots")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="slots")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="slots")
    date = models.DateField(help_text="The day in the clinic's time zone.")
    start = models.DateTimeField()
    end = models.DateTimeField()
    capacity = models.PositiveSmallIntegerField(default=1)
    booked_count = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "doctor_id"]
        constraints = [
            models.UniqueConstraint(fields=["doctor", "start"], name="scheduling_slot_unique_doctor_start"),
            # The database, not only the service, refuses an overbooked slot.
            models.CheckConstraint(
                condition=Q(booked_count__lte=F("capacity")), name="scheduling_slot_not_overbooked"
            ),
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="scheduling_slot_end_after_start"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="scheduling_slot_capacity_positive"),
        ]
        indexes = [
            models.Index(fields=["department", "start"], name="scheduling_slot_dept_start"),
            models.Index(fields=["clinic", "start"], name="scheduling_slot_clinic_start"),
            models.Index(fields=["doctor", "date"], name="scheduling_slot_doctor_date"),
            # Slot listing by clinic and day (277 instead of 9-15 req/s at 880k slots).
            models.Index(fields=["clinic", "date", "start"], name="scheduling_slot_clinic_date"),
        ]

    def __str__(self) -> str:
        # The picker's label: the clinic's wall clock with the zone named (reads the clinic: select it).
        return f"{self.doctor} {in_clinic_time(self.start, self.clinic.time_zone)}"

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.booked_count, 0)


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CHECKED_IN = "checked_in", "Checked in"
    IN_CONSULTATION = "in_consultation", "In consultation"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


# One vocabulary of appointment states for people, used by the dashboard, the waiting room, the portal,
# the admin and the consultation panel (Appointment.status_label, the appointment_status template tag),
# so one visit never reads "Called, on the way" in one place and "Checked in" in another. "Checked in"
# splits in two for people: waiting, or called to the room (queue state, scheduling.selectors.queue_state).
STATUS_LABELS = {
    "booked": "Booked",
    "waiting": "Checked in, waiting",
    "called": "Called to the room",
    "in_consultation": "With the doctor",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "no_show": "No-show",
}


# Appointments in these states hold their seat and block the patient's time.
ACTIVE_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULTATION)


class BookingChannel(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    PORTAL = "portal", "Portal"
    SYSTEM = "system", "System"


class Appointment(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="appointments")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="appointments")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    # The seat this appointment holds in its slot; cleared when it is cancelled. Unique per slot, so
    # two bookings can never hold the same seat even if a service bug skipped the capacity check.
    seat = models.PositiveSmallIntegerField(null=True, blank=True)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    reason = models.CharField(max_length=500, blank=True)
    channel = models.CharField(max_length=8, choices=BookingChannel.choices, default=BookingChannel.API)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    booked_at = models.DateTimeField(auto_now_add=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    no_show_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancellation_reason = models.CharField(max_length=500, blank=True)
    reschedule_count = models.PositiveSmallIntegerField(default=0)
    # The live queue: a token issued at check-in (unique per department and clinic-local day, never
    # reused) and a priority flag (NEWS2 medium/high, or set by staff) that puts the patient first.
    token_number = models.PositiveIntegerField(null=True, blank=True)
    token_date = models.DateField(null=True, blank=True)
    is_priority = models.BooleanField(default=False)
    priority_reason = models.CharField(max_length=200, blank=True)
    called_at = models.DateTimeField(null=True, blank=True)
    # The place in the doctor's waiting line, as digits that sort in queue order (services.queue.queue_key):
    # priority band, appointment time, check-in time, id. A skip re-keys the patient just behind the next one.
    queue_key = models.CharField(max_length=200, blank=True, default="")
    # The last skip, so it can be undone for OPD_UNDO_MINUTES (services.queue.appointment_undo_skip):
    # when, and the key the patient had before. Cleared by the undo and by anything that re-keys them.
    skipped_at = models.DateTimeField(null=True, blank=True)
    key_before_skip = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "seat"], name="scheduling_appointment_one_per_seat"),
            models.UniqueConstraint(
                fields=["department", "token_date", "token_number"],
                name="scheduling_appointment_token_unique",
            ),
            models.CheckConstraint(
                condition=Q(seat__isnull=True) | Q(seat__gte=1), name="scheduling_appointment_seat_positive"
            ),
            models.CheckConstraint(
                condition=Q(status=AppointmentStatus.CANCELLED, seat__isnull=True)
                | (~Q(status=AppointmentStatus.CANCELLED) & Q(seat__isnull=False)),
                name="scheduling_appointment_seat_iff_not_cancelled",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AppointmentStatus.values), name="scheduling_appointment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="scheduling_appointment_end_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "start"], name="scheduling_appt_patient_start"),
            models.Index(fields=["doctor", "start"], name="scheduling_appt_doctor_start"),
            models.Index(fields=["clinic", "start"], name="scheduling_appt_clinic_start"),
            models.Index(fields=["organization", "status", "start"], name="scheduling_appt_org_status"),
            # First completed visit per patient (new vs returning): a loose index scan, 2.1 s -> 0.5 s at 1M.
            models.Index(fields=["patient", "status", "start"], name="scheduling_appt_patient_status"),
            models.Index(fields=["doctor", "status", "queue_key"], name="scheduling_appt_doctor_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.doctor} at {in_clinic_time(self.start, self.clinic.time_zone)}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def display_state(self) -> str:
        """The status as people see it: checked in is "waiting" or, once called, "called"."""
        if self.status == AppointmentStatus.CHECKED_IN:
            return "called" if self.called_at else "waiting"
        return self.status

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.display_state]

    @property
    def token_label(self) -> str | None:
        """Tokens restart per department each day, so screens show the department's code with them."""
        if self.token_number is None:
            return None
        return f"{self.department.code.upper()}-{self.token_number}"


class TokenCounter(models.Model):
    """The last token issued in a department on a clinic-local day; its row is locked while one is taken."""

    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["department", "date"], name="scheduling_token_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.department_id} {self.date}: {self.last_value}"


class QueueVersion(models.Model):
    """How many changes a live queue ("doctor:<id>" or "clinic:<id>") has seen; bumped in the same
    transaction as each change, so a version number always names one committed state of the queue."""

    queue = models.CharField(max_length=40, unique=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.queue}: {self.last_value}"
