"""Scheduled reports: what to build, for whom, when (ReportDefinition), and each build (ReportRun).

A definition's schedule is a crontab kept on the definition; analytics.services mirrors it into a
django-celery-beat PeriodicTask (one per definition) whenever the definition is saved, so beat's
DatabaseScheduler runs `analytics.build_report` at those times.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django_celery_beat import validators as cron
from django_celery_beat.models import PeriodicTask

from opd.core.models import Organization, validate_time_zone


class ReportKind(models.TextChoices):
    DAILY = "daily", "Daily appointment statistics"
    NEWS2 = "news2", "NEWS2 bands per day"
    CARE_NOTES = "care_notes", "Care notes per category per day"


class ReportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    HTML = "html", "HTML"


def validate_recipients(value: str) -> None:
    addresses = parse_recipients(value)
    if not addresses:
        raise ValidationError("Give at least one e-mail address.")
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(f"Not e-mail addresses: {', '.join(bad)}.")


def parse_recipients(value: str) -> list[str]:
    """Addresses separated by commas, semicolons or new lines; duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for part in (value or "").replace(";", ",").replace("\n", ",").split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return list(seen)


class ReportDefinition(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=ReportKind.choices, default=ReportKind.DAILY)
    format = models.CharField(max_length=8, choices=ReportFormat.choices, default=ReportFormat.CSV)
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text='Optional: {"days": 7, "clinics": [1, 2], "department": 3, "doctor": 4}. "days" is how '
        "many days up to yesterday the report covers (default 7).",
    )
    recipients = models.TextField(
        validators=[validate_recipients], help_text="E-mail addresses, separated by commas or new lines."
    )
    # The schedule, crontab style, in `time_zone`.
    minute = models.CharField(max_length=60, default="0", validators=[cron.minute_validator])
    hour = models.CharField(max_length=60, default="7", validators=[cron.hour_validator])
    day_of_week = models.CharField(
        max_length=60, default="*", validators=[cron.day_of_week_validator], help_text="0 or 7 is Sunday."
    )
    day_of_month = models.CharField(max_length=60, default="*", validators=[cron.day_of_month_validator])
    month_of_year = models.CharField(max_length=60, default="*", validators=[cron.month_of_year_validator])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_active = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="analytics_report_name_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=ReportKind.values), name="analytics_report_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=ReportFormat.values), name="analytics_report_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule_text(self) -> str:
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} {self.day_of_week} "
            f"({self.time_zone})"
        )

    @property
    def recipient_list(self) -> list[str]:
        return parse_recipients(self.recipients)


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Failed, will retry"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ReportRun(models.Model):
    """One build of a report: its file, whom it was sent to, or why it failed."""

    definition = models.ForeignKey(ReportDefinition, on_delete=models.CASCADE, related_name="runs")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    # The Celery task id: a redelivered or retried message finds its run instead of starting another.
    task_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    # What the file covers, so a download can check that the reader may see every clinic in it.
    clinic_ids = models.JSONField(default=list, blank=True)
    file = models.FileField(upload_to="reports/%Y/%m/", blank=True)
    content_type = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(default=0)
    recipients = models.TextField(blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="analytics_run_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["definition", "created_at"], name="analytics_run_definition_time"),
            models.Index(fields=["organization", "created_at"], name="analytics_run_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.definition} #{self.pk} ({self.get_status_display().lower()})"


# The stored figures are derived data: their rows reference clinics, doctors and so on without foreign-key
# constraints in the database, whose checks would hold shared locks on those rows while a refresh writes
# (stalling an admin's edit of a clinic or a doctor's approval for as long).
DERIVED: dict[str, Any] = {"db_constraint": False}


class StatLevel(models.TextChoices):
    DOCTOR = "doctor", "One doctor in one department of a clinic"
    CLINIC = "clinic", "A whole clinic"
    ORGANIZATION = "organization", "A whole organization"


class DailyStat(models.Model):
    """The figures of one closed clinic-local day, stored at three levels so that the daily statistics
    sum thousands of rows instead of reading a million appointments: per (clinic, department, doctor),
    per clinic and per organization. The clinic and organization rows also hold the day's wait p90,
    which cannot be summed. Derived data, rebuilt by analytics.summaries.daily_summaries_refresh; read
    only while SummaryDay says the day is current for every clinic in scope.
    """

    level = models.CharField(max_length=12, choices=StatLevel.choices)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", **DERIVED)
    clinic = models.ForeignKey(
        "core.Clinic", on_delete=models.CASCADE, null=True, related_name="+", **DERIVED
    )
    department = models.ForeignKey(
        "core.Department", on_delete=models.CASCADE, null=True, related_name="+", **DERIVED
    )
    doctor = models.ForeignKey(
        "scheduling.Doctor", on_delete=models.CASCADE, null=True, related_name="+", **DERIVED
    )
    date = models.DateField()
    appointments = models.PositiveIntegerField(default=0)
    booked = models.PositiveIntegerField(default=0)
    checked_in = models.PositiveIntegerField(default=0)
    in_consultation = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    no_show = models.PositiveIntegerField(default=0)
    new_patients = models.PositiveIntegerField(default=0)
    wait_count = models.PositiveIntegerField(default=0)
    wait_seconds = models.BigIntegerField(default=0)
    wait_p90_seconds = models.FloatField(null=True, blank=True)
    consultation_count = models.PositiveIntegerField(default=0)
    consultation_seconds = models.BigIntegerField(default=0)
    capacity = models.PositiveIntegerField(default=0)
    seats_booked = models.PositiveIntegerField(default=0)
    # Consultations by NEWS2 band, on the day their vitals were recorded (department: the appointment's).
    news2_low = models.PositiveIntegerField(default=0)
    news2_low_medium = models.PositiveIntegerField(default=0)
    news2_medium = models.PositiveIntegerField(default=0)
    news2_high = models.PositiveIntegerField(default=0)
    # Care notes by category: clinic and organization rows only (notes belong to clinics).
    care_observation = models.PositiveIntegerField(default=0)
    care_medication = models.PositiveIntegerField(default=0)
    care_hygiene = models.PositiveIntegerField(default=0)
    care_nutrition = models.PositiveIntegerField(default=0)
    care_incident = models.PositiveIntegerField(default=0)
    care_other = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "date", "department", "doctor"], name="analytics_dailystat_unique"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        level=StatLevel.DOCTOR,
                        clinic__isnull=False,
                        department__isnull=False,
                        doctor__isnull=False,
                    )
                    | Q(
                        level=StatLevel.CLINIC,
                        clinic__isnull=False,
                        department__isnull=True,
                        doctor__isnull=True,
                    )
                    | Q(
                        level=StatLevel.ORGANIZATION,
                        clinic__isnull=True,
                        department__isnull=True,
                        doctor__isnull=True,
                    )
                ),
                name="analytics_dailystat_level_keys",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "level", "date", "clinic"], name="analytics_dailystat_org_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.clinic_id or self.organization_id} {self.date}"


class DailyWait(models.Model):
    """One measured wait (check-in to start, in seconds) of a closed day: the 90th percentile of any
    scope's day is taken over these in SQL, as it is over appointments for open days."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", **DERIVED)
    clinic = models.ForeignKey("core.Clinic", on_delete=models.CASCADE, related_name="+", **DERIVED)
    department = models.ForeignKey("core.Department", on_delete=models.CASCADE, related_name="+", **DERIVED)
    doctor = models.ForeignKey("scheduling.Doctor", on_delete=models.CASCADE, related_name="+", **DERIVED)
    date = models.DateField()
    seconds = models.IntegerField()

    class Meta:
        indexes = [
            # Each day's waits in order, read from the top for the 90th percentile (selectors.daily.
            # stored_wait_p90); the scope's columns are in the index, so no row is visited.
            models.Index(
                fields=["organization", "date", "seconds", "clinic", "department", "doctor"],
                name="analytics_dailywait_org_date",
            ),
            models.Index(fields=["clinic", "date"], name="analytics_dailywait_clinic"),
        ]

    def __str__(self) -> str:
        return f"clinic {self.clinic_id} {self.date}: {self.seconds} s"


class SummaryDay(models.Model):
    """Whether the stored figures of (clinic, day) are current.

    `computed_from` is the database's clock when the refresh began reading; `changed_at` the database's
    clock when something on that day last changed (set after the change committed). The day is fresh
    while nothing changed since its figures were read: changed_at is NULL or before computed_from.
    """

    clinic = models.ForeignKey("core.Clinic", on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    computed_from = models.DateTimeField()
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "date"], name="analytics_summaryday_unique"),
        ]

    def __str__(self) -> str:
        return f"clinic {self.clinic_id} {self.date}"


class SummaryLock(models.Model):
    """One row per organization that refreshes of its stored figures lock, so they take turns. (Locking
    the organization row itself would stall every change of an appointment's status there: InnoDB checks
    the foreign key of an index that starts with the organization, taking a shared lock on that row.)"""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"summaries of organization {self.organization_id}"
