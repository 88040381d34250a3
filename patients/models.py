from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from opd.core.fields import BlindIndexField, EncryptedCharField, EncryptedEmailField, EncryptedTextField
from opd.core.models import Clinic, Organization


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Whole years of age on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def validate_birth_date(value: dt.date) -> None:
    today = timezone.localdate()
    if value > today:
        raise ValidationError("Date of birth cannot be in the future.")
    if value < years_before(today, 150):
        raise ValidationError("Date of birth cannot be more than 150 years ago.")


# The encrypted columns of a patient. Lists that show only who the patient is (the live queue) defer them:
# each costs a decryption per row read.
ENCRYPTED_FIELDS = ("phone", "email", "address", "emergency_contact_phone", "insurance_policy_number")


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PatientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    # A duplicate whose records were moved to another patient (patients.services.patient_merge); kept,
    # never deleted, pointing at the record that stays (merged_into).
    MERGED = "merged", "Merged"


class Patient(models.Model):
    """A person registered with an organization. Never deleted: deactivated."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="patients")
    registered_at_clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="patient"
    )
    mrn = models.CharField("medical record number", max_length=20, editable=False)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(validators=[validate_birth_date])
    sex = models.CharField(max_length=8, choices=Sex.choices, default=Sex.UNKNOWN)
    # Encrypted at rest (opd.core.fields); names stay plain so name-prefix search keeps its indexes.
    phone = EncryptedCharField(max_length=32, blank=True)
    # Keyed HMAC of the phone number's last 7 digits, so "+44 20 7946-0018", "020 7946 0018" and
    # "7946 0018" find the same person through one index without the number being stored in clear.
    phone_index = BlindIndexField(source="phone", kind="phone")
    email = EncryptedEmailField(blank=True)
    address = EncryptedTextField(blank=True)
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_phone = EncryptedCharField(max_length=32, blank=True)
    insurance_provider = models.CharField(max_length=200, blank=True)
    insurance_policy_number = EncryptedCharField(max_length=100, blank=True)
    # Keyed HMAC of the policy number without case, spaces or punctuation: equality search.
    insurance_index = BlindIndexField(source="insurance_policy_number", kind="identifier")
    status = models.CharField(max_length=8, choices=PatientStatus.choices, default=PatientStatus.ACTIVE)
    # "No known allergies" is a statement someone made, with a name and a time; None means nobody said it
    # (not asked). Recording an active allergy clears it (patients.services.allergy_record).
    no_known_allergies_at = models.DateTimeField(null=True, blank=True, editable=False)
    no_known_allergies_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # Set by patient_merge only: the record this duplicate was merged into, and when.
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    merged_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A portal sign-up that looked like an existing patient: reception reviews it (and merges, or marks
    # it reviewed); the person signing up is never shown who else is registered.
    duplicate_review = models.BooleanField("possible duplicate to review", default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "mrn"], name="patients_mrn_unique_per_org"),
            models.CheckConstraint(
                condition=models.Q(status__in=PatientStatus.values), name="patients_status_valid"
            ),
            # A merged record points at the one it went into; no other record points anywhere.
            models.CheckConstraint(
                condition=models.Q(status="merged", merged_into__isnull=False)
                | (~models.Q(status="merged") & models.Q(merged_into__isnull=True)),
                name="patients_merged_points_somewhere",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "last_name", "first_name"], name="patients_org_name"),
            models.Index(fields=["organization", "first_name"], name="patients_org_first_name"),
            models.Index(fields=["organization", "phone_index"], name="patients_org_phone_index"),
            # Duplicate detection looks up the same date of birth at every registration.
            models.Index(fields=["organization", "date_of_birth"], name="patients_org_birth_date"),
            models.Index(fields=["organization", "insurance_index"], name="patients_org_insurance_index"),
            models.Index(fields=["organization", "status", "last_name"], name="patients_org_status_name"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.mrn})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def is_active(self) -> bool:
        return self.status == PatientStatus.ACTIVE


class MrnSequence(models.Model):
    """Per-organization counter behind MRNs; the row is locked while a number is taken."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"MRN sequence of organization {self.organization_id}: {self.last_value}"


class AllergyCategory(models.TextChoices):
    DRUG = "drug", "Drug"
    FOOD = "food", "Food"
    ENVIRONMENTAL = "environmental", "Environmental"
    OTHER = "other", "Other"


class AllergySeverity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    LIFE_THREATENING = "life_threatening", "Life-threatening"


class AllergyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class AllergyAssessment(models.TextChoices):
    """What the record says about allergies, derived (patients.selectors.allergy_assessment)."""

    NOT_RECORDED = "not_recorded", "Allergies not recorded"
    NO_KNOWN_ALLERGIES = "no_known_allergies", "No known allergies"
    HAS_ALLERGIES = "has_allergies", "Has allergies"


class Allergy(models.Model):
    """An allergy or intolerance of a patient. Never deleted: marked inactive or entered in error."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    # Plain text: prescribing matches medicine names against it (patients.allergy_classes).
    substance = models.CharField(max_length=200)
    category = models.CharField(max_length=16, choices=AllergyCategory.choices)
    # Clinical free text: encrypted at rest, redacted in the audit trail.
    reaction = EncryptedTextField(max_length=2000, blank=True)
    severity = models.CharField(max_length=16, choices=AllergySeverity.choices)
    status = models.CharField(max_length=16, choices=AllergyStatus.choices, default=AllergyStatus.ACTIVE)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["patient_id", "-recorded_at", "id"]
        verbose_name_plural = "allergies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(category__in=AllergyCategory.values), name="allergies_category_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(severity__in=AllergySeverity.values), name="allergies_severity_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AllergyStatus.values), name="allergies_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="allergies_patient_status")]

    def __str__(self) -> str:
        return f"{self.substance} ({self.get_severity_display()}, {self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == AllergyStatus.ACTIVE


# Problems and current medications -----------------------------------------------------------------------

# An ICD-10 code: a letter, two digits, then optionally a dot and up to four more characters (WHO ICD-10
# and national modifications such as ICD-10-CM, "S72.001A"). Stored upper case with the dot
# (patients.services.normalize_icd10), so "e119" and "E11.9" are one code.
ICD10_PATTERN = r"^[A-Z][0-9]{2}(\.[A-Z0-9]{1,4})?$"
validate_icd10 = RegexValidator(
    ICD10_PATTERN,
    "Enter an ICD-10 code: a letter, two digits, then optionally a dot and up to 4 characters (E11.9).",
    code="invalid_icd10",
)


def latest_today() -> dt.date:
    """The latest calendar date anywhere on Earth (UTC+14). Clinics keep their own time zones and this
    app does not know the clinic: a date is "in the future" only if it is for everyone."""
    return (timezone.now() + dt.timedelta(hours=14)).date()


class ProblemStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class Problem(models.Model):
    """An entry on a patient's problem list (a diagnosis or condition). Never deleted: resolved, or marked
    entered in error."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="problems")
    # A diagnosis in words is clinical free text: encrypted at rest, redacted in the audit trail.
    description = EncryptedCharField(max_length=300)
    # Plain: a short coded value, kept searchable for reports.
    icd10_code = models.CharField("ICD-10 code", max_length=8, blank=True, validators=[validate_icd10])
    status = models.CharField(max_length=16, choices=ProblemStatus.choices, default=ProblemStatus.ACTIVE)
    onset_date = models.DateField(null=True, blank=True)
    resolved_date = models.DateField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["patient_id", "-recorded_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ProblemStatus.values), name="problems_status_valid"
            ),
            # An active problem has no resolution date; a resolution never precedes the onset.
            models.CheckConstraint(
                condition=~models.Q(status=ProblemStatus.ACTIVE, resolved_date__isnull=False),
                name="problems_active_not_resolved",
            ),
            models.CheckConstraint(
                condition=models.Q(onset_date__isnull=True)
                | models.Q(resolved_date__isnull=True)
                | models.Q(resolved_date__gte=models.F("onset_date")),
                name="problems_resolved_after_onset",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="problems_patient_status")]

    def __str__(self) -> str:
        code = f" ({self.icd10_code})" if self.icd10_code else ""
        return f"{self.description}{code}, {self.get_status_display()}"

    def clean(self) -> None:
        # The constraints above hold the same rules; this names the field in the message.
        errors = {}
        if self.status == ProblemStatus.ACTIVE and self.resolved_date is not None:
            errors["resolved_date"] = "An active problem has no resolution date: resolve it instead."
        if self.onset_date and self.resolved_date and self.resolved_date < self.onset_date:
            errors["resolved_date"] = "The resolution date cannot be before the onset date."
        if self.onset_date and self.onset_date > latest_today():
            errors["onset_date"] = "The onset date cannot be in the future."
        if self.resolved_date and self.resolved_date > latest_today():
            errors["resolved_date"] = "The resolution date cannot be in the future."
        if errors:
            raise ValidationError(errors)

    @property
    def is_active(self) -> bool:
        return self.status == ProblemStatus.ACTIVE


class MedicationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class Medication(models.Model):
    """A medicine the patient takes (a current-medication list, whoever prescribed it). Never deleted:
    stopped, or marked entered in error."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(max_length=200)
    dose = models.CharField("dose or strength", max_length=100, blank=True)
    frequency = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=16, choices=MedicationStatus.choices, default=MedicationStatus.ACTIVE
    )
    started_on = models.DateField(null=True, blank=True)
    stopped_on = models.DateField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["patient_id", "-recorded_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=MedicationStatus.values), name="medications_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=MedicationStatus.ACTIVE, stopped_on__isnull=False),
                name="medications_active_not_stopped",
            ),
            models.CheckConstraint(
                condition=models.Q(started_on__isnull=True)
                | models.Q(stopped_on__isnull=True)
                | models.Q(stopped_on__gte=models.F("started_on")),
                name="medications_stopped_after_start",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="medications_patient_status")]

    def __str__(self) -> str:
        detail = " ".join(part for part in (self.dose, self.frequency) if part)
        return f"{self.name} {detail}".strip() + f", {self.get_status_display()}"

    def clean(self) -> None:
        errors = {}
        if self.status == MedicationStatus.ACTIVE and self.stopped_on is not None:
            errors["stopped_on"] = "An active medication has no stop date: stop it instead."
        if self.started_on and self.stopped_on and self.stopped_on < self.started_on:
            errors["stopped_on"] = "The stop date cannot be before the start date."
        if self.started_on and self.started_on > latest_today():
            errors["started_on"] = "The start date cannot be in the future."
        if self.stopped_on and self.stopped_on > latest_today():
            errors["stopped_on"] = "The stop date cannot be in the future."
        if errors:
            raise ValidationError(errors)

    @property
    def is_active(self) -> bool:
        return self.status == MedicationStatus.ACTIVE
