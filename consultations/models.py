"""The clinical record: consultations (notes, vitals and their NEWS2), addenda, prescriptions, results,
and the care notes nurses and staff write.

Vitals live on the consultation: one set per visit, which is what an outpatient consultation records
and what the API shows. The NEWS2 sub-scores, total and band are stored when the vitals are written
(consultations.services), so lists, the live queue and analytics read them without recomputing; the
(organization, clinic, vitals_recorded_at, news2_band) index is what "NEWS2 bands seen per day" groups by.

Every rule a row must keep is also a database constraint; the model validators and `clean()` give the
message a person reads, the constraint is the backstop.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from opd.core.fields import EncryptedCharField, EncryptedTextField
from opd.core.models import Clinic, Organization
from opd.core.storage import encrypted_storage
from patients.models import Patient
from scheduling.models import Appointment, Doctor

from . import news2

# ICD-10 shape: a letter, two characters (digits, or a letter third as in ICD-10-CM's C4A), and an
# optional extension of up to four after a dot (S52.521A). U is accepted: WHO assigns codes there for
# emergency use (U07.1 COVID-19), and a clinician recording one must not be refused. `[.]` rather than
# `\.` keeps the pattern free of backslashes, which SQL string literals would otherwise eat.
ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z]([.][0-9A-Z]{1,4})?$"


@deconstructible
class PlausibleRange:
    """A reading outside what a living patient can have is a data-entry error: refuse it, saying why."""

    def __init__(self, label: str, low: Decimal | int, high: Decimal | int, unit: str):
        self.label, self.low, self.high, self.unit = label, low, high, unit

    def __call__(self, value) -> None:
        if value is None:
            return
        if not (self.low <= value <= self.high):
            raise ValidationError(
                f"{self.label} must be between {self.low} and {self.high} {self.unit}; "
                f"{value} looks like a data-entry error.",
                code="implausible",
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, PlausibleRange) and (self.label, self.low, self.high, self.unit) == (
            other.label,
            other.low,
            other.high,
            other.unit,
        )


# name -> (label, lowest plausible, highest plausible, unit)
VITAL_RANGES: dict[str, tuple[str, Decimal | int, Decimal | int, str]] = {
    "systolic_bp": ("Systolic blood pressure", 50, 300, "mmHg"),
    "diastolic_bp": ("Diastolic blood pressure", 20, 200, "mmHg"),
    "pulse": ("Pulse", 20, 300, "beats/min"),
    "respiratory_rate": ("Respiratory rate", 4, 80, "breaths/min"),
    "temperature": ("Temperature", Decimal("30.0"), Decimal("45.0"), "°C"),
    "spo2": ("SpO2", 50, 100, "%"),
    "weight_kg": ("Weight", Decimal("0.2"), Decimal("500"), "kg"),
    "height_cm": ("Height", Decimal("20"), Decimal("260"), "cm"),
}


def _plausible(name: str) -> list[PlausibleRange]:
    return [PlausibleRange(*VITAL_RANGES[name])]


def validate_icd10(value: str) -> None:
    if value and not re.fullmatch(ICD10_PATTERN, value.strip().upper()):
        raise ValidationError(
            "Not an ICD-10 code: use a letter, two digits and an optional extension after a dot "
            "(for example J45 or J45.901).",
            code="icd10",
        )


class ConsultationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    COMPLETED = "completed", "Completed"


class Consciousness(models.TextChoices):
    """ACVPU. Anything but Alert scores 3 in NEWS2."""

    ALERT = "A", "Alert"
    CONFUSION = "C", "New confusion"
    VOICE = "V", "Responds to voice"
    PAIN = "P", "Responds to pain"
    UNRESPONSIVE = "U", "Unresponsive"


class News2Band(models.TextChoices):
    LOW = news2.LOW, "Low"
    LOW_MEDIUM = news2.LOW_MEDIUM, "Low-medium"
    MEDIUM = news2.MEDIUM, "Medium"
    HIGH = news2.HIGH, "High"


VITAL_FIELDS = (
    "systolic_bp",
    "diastolic_bp",
    "pulse",
    "respiratory_rate",
    "temperature",
    "spo2",
    "weight_kg",
    "height_cm",
    "on_supplemental_oxygen",
    "consciousness",
    "hypercapnic_respiratory_failure",
)
NOTE_FIELDS = (
    "chief_complaint",
    "history",
    "examination",
    "assessment",
    "diagnosis_code",
    "plan",
    "follow_up_date",
    "vitals_not_taken_reason",
)
NEWS2_SCORE_FIELDS = tuple(f"news2_{name}" for name in news2.PARAMETERS)
TEXT_MAX = 10_000


def _range_check(name: str) -> models.CheckConstraint:
    _label, low, high, _unit = VITAL_RANGES[name]
    return models.CheckConstraint(
        condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": low, f"{name}__lte": high}),
        name=f"consult_{name}_plausible",
    )


class News2Readings:
    """NEWS2 read from a row's vitals and stored scores: the consultation's and a triage observation's
    columns have the same names, so both read them through this one place."""

    respiratory_rate: int | None
    spo2: int | None
    on_supplemental_oxygen: bool | None
    systolic_bp: int | None
    pulse: int | None
    consciousness: str
    temperature: Decimal | None
    hypercapnic_respiratory_failure: bool
    news2_total: int | None

    @property
    def observations(self) -> news2.Observations:
        return news2.Observations(
            respiratory_rate=self.respiratory_rate,
            spo2=self.spo2,
            on_supplemental_oxygen=self.on_supplemental_oxygen,
            systolic_bp=self.systolic_bp,
            pulse=self.pulse,
            consciousness=self.consciousness or None,
            temperature=self.temperature,
            spo2_scale_2=self.hypercapnic_respiratory_failure,
        )

    @property
    def news2_missing(self) -> list[str]:
        return news2.missing_parameters(self.observations)

    @property
    def news2_sub_scores(self) -> dict[str, int] | None:
        if self.news2_total is None:
            return None
        return {name: getattr(self, f"news2_{name}") for name in news2.PARAMETERS}

    @property
    def news2_response(self) -> news2.ClinicalResponse | None:
        """What the score asks of the clinic (RCP 2017's clinical response), once there is a score."""
        sub_scores = self.news2_sub_scores
        if self.news2_total is None or sub_scores is None:
            return None
        return news2.clinical_response(self.news2_total, sub_scores.values())


class Consultation(News2Readings, models.Model):
    """What a doctor records for one appointment. Draft while being written, then completed (read-only)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="consultations")
    # One consultation per appointment: the unique key is what settles two doctors' clicks racing.
    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="consultation")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="consultations")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consultations")
    status = models.CharField(
        max_length=10, choices=ConsultationStatus.choices, default=ConsultationStatus.DRAFT
    )
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Clinical notes, encrypted at rest (the ICD-10 code stays plain: coded, checked and counted).
    chief_complaint = EncryptedTextField(blank=True, max_length=TEXT_MAX)
    history = EncryptedTextField(blank=True, max_length=TEXT_MAX)
    examination = EncryptedTextField(blank=True, max_length=TEXT_MAX)
    assessment = EncryptedTextField("assessment / diagnosis", blank=True, max_length=TEXT_MAX)
    diagnosis_code = models.CharField(
        "ICD-10 code",
        max_length=12,
        blank=True,
        validators=[validate_icd10],
        help_text="For example J45.901.",
    )
    plan = EncryptedTextField(blank=True, max_length=TEXT_MAX)
    follow_up_date = models.DateField(null=True, blank=True)

    # Vitals (one set per consultation). Units are in the names or the help text.
    systolic_bp = models.PositiveSmallIntegerField(
        "systolic BP", null=True, blank=True, validators=_plausible("systolic_bp"), help_text="mmHg"
    )
    diastolic_bp = models.PositiveSmallIntegerField(
        "diastolic BP", null=True, blank=True, validators=_plausible("diastolic_bp"), help_text="mmHg"
    )
    pulse = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_plausible("pulse"), help_text="beats/min"
    )
    respiratory_rate = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_plausible("respiratory_rate"), help_text="breaths/min"
    )
    temperature = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_plausible("temperature"),
        help_text="°C, one decimal",
    )
    spo2 = models.PositiveSmallIntegerField(
        "SpO2", null=True, blank=True, validators=_plausible("spo2"), help_text="%"
    )
    weight_kg = models.DecimalField(
        "weight",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=_plausible("weight_kg"),
        help_text="kg",
    )
    height_cm = models.DecimalField(
        "height",
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_plausible("height_cm"),
        help_text="cm",
    )
    on_supplemental_oxygen = models.BooleanField(
        "on supplemental oxygen", null=True, blank=True, help_text="Unknown until recorded."
    )
    consciousness = models.CharField(
        "level of consciousness (ACVPU)", max_length=1, choices=Consciousness.choices, blank=True
    )
    hypercapnic_respiratory_failure = models.BooleanField(
        "hypercapnic respiratory failure (use SpO2 scale 2)",
        default=False,
        help_text="Set by the clinician for a patient with a prescribed SpO2 target of 88-92 %.",
    )
    vitals_recorded_at = models.DateTimeField(null=True, blank=True)
    # A consultation is completed with vitals (a NEWS2) or with the reason they were not taken (a video
    # call, the patient declined): the minimum record (services.consultations.missing_from_record).
    vitals_not_taken_reason = EncryptedTextField(
        "why vitals were not taken", blank=True, max_length=1000, help_text="Only if no vitals are recorded."
    )

    # NEWS2, stored when the vitals are written (all null while a parameter is missing).
    news2_respiratory_rate = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_spo2 = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_air_or_oxygen = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_systolic_bp = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_pulse = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_consciousness = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_temperature = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_total = models.PositiveSmallIntegerField("NEWS2", null=True, blank=True, editable=False)
    news2_band = models.CharField(
        "NEWS2 clinical risk", max_length=10, choices=News2Band.choices, blank=True, editable=False
    )

    # Bumped by every write to the draft (notes, vitals, prescription lines) under the consultation's row
    # lock: a writer sends the version it last saw, and a stale one is refused (409 version_conflict)
    # instead of overwriting what another tab or person saved meanwhile.
    version = models.PositiveIntegerField(default=1, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ConsultationStatus.values), name="consult_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=ConsultationStatus.COMPLETED, completed_at__isnull=False)
                | (~Q(status=ConsultationStatus.COMPLETED) & Q(completed_at__isnull=True)),
                name="consult_completed_at_iff_completed",
            ),
            models.CheckConstraint(
                condition=Q(consciousness="") | Q(consciousness__in=Consciousness.values),
                name="consult_consciousness_valid",
            ),
            *[_range_check(name) for name in VITAL_RANGES],
            models.CheckConstraint(
                condition=Q(diastolic_bp__isnull=True)
                | Q(systolic_bp__isnull=True)
                | Q(diastolic_bp__lt=F("systolic_bp")),
                name="consult_diastolic_below_systolic",
                violation_error_message="The diastolic pressure must be below the systolic.",
            ),
            models.CheckConstraint(
                condition=Q(diagnosis_code="") | Q(diagnosis_code__regex=ICD10_PATTERN),
                name="consult_diagnosis_code_icd10",
            ),
            models.CheckConstraint(
                condition=Q(news2_total__isnull=True, news2_band="")
                | Q(news2_total__isnull=False, news2_band__in=News2Band.values),
                name="consult_news2_band_with_total",
            ),
        ]
        indexes = [
            # Analytics: NEWS2 bands seen per clinic and day.
            models.Index(
                fields=["organization", "clinic", "vitals_recorded_at", "news2_band"],
                name="consult_news2_clinic_time",
            ),
            models.Index(fields=["patient", "started_at"], name="consult_patient_started"),
            models.Index(fields=["clinic", "started_at"], name="consult_clinic_started"),
        ]

    def __str__(self) -> str:
        return f"Consultation #{self.pk} ({self.get_status_display().lower()})"

    def clean(self) -> None:
        errors = {}
        if (
            self.diastolic_bp is not None
            and self.systolic_bp is not None
            and self.diastolic_bp >= self.systolic_bp
        ):
            errors["diastolic_bp"] = (
                f"The diastolic pressure ({self.diastolic_bp} mmHg) must be below the systolic "
                f"({self.systolic_bp} mmHg)."
            )
        if self.follow_up_date and self.started_at and self.clinic_id:
            started_on = timezone.localtime(self.started_at, self.clinic.tz).date()
            if self.follow_up_date < started_on:
                errors["follow_up_date"] = (
                    f"The follow-up cannot be before the consultation ({started_on:%d %b %Y})."
                )
        if errors:
            raise ValidationError(errors)

    @property
    def is_draft(self) -> bool:
        return self.status == ConsultationStatus.DRAFT

    @property
    def bmi(self) -> Decimal | None:
        """Body-mass index from weight and height (kg/m²), one decimal; derived, never entered."""
        if not self.weight_kg or not self.height_cm:
            return None
        metres = Decimal(self.height_cm) / 100
        return (Decimal(self.weight_kg) / (metres * metres)).quantize(Decimal("0.1"))


class Addendum(models.Model):
    """A correction or later note on a completed consultation. Appended, never edited."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = EncryptedTextField(max_length=TEXT_MAX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "addenda"
        indexes = [models.Index(fields=["consultation", "created_at"], name="consult_addendum_time")]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="consult_addendum_has_text")]

    def __str__(self) -> str:
        return f"Addendum #{self.pk} to consultation #{self.consultation_id}"


class Route(models.TextChoices):
    ORAL = "oral", "Oral"
    SUBLINGUAL = "sublingual", "Sublingual"
    INHALED = "inhaled", "Inhaled"
    NASAL = "nasal", "Nasal"
    TOPICAL = "topical", "Topical"
    TRANSDERMAL = "transdermal", "Transdermal"
    EYE = "eye", "Eye"
    EAR = "ear", "Ear"
    RECTAL = "rectal", "Rectal"
    VAGINAL = "vaginal", "Vaginal"
    SUBCUTANEOUS = "subcutaneous", "Subcutaneous injection"
    INTRAMUSCULAR = "intramuscular", "Intramuscular injection"
    INTRAVENOUS = "intravenous", "Intravenous"
    OTHER = "other", "Other"


class Prescription(models.Model):
    """Medication lines written during a consultation and issued when it is completed."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="prescriptions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="prescriptions")
    notes = EncryptedTextField(blank=True, max_length=2000)
    issued_at = models.DateTimeField(null=True, blank=True, help_text="When the consultation was completed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "created_at"], name="consult_rx_patient_time")]

    def __str__(self) -> str:
        return f"Prescription #{self.pk}"


class PrescriptionItem(models.Model):
    prescription = models.ForeignKey(Prescription, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    medication = models.CharField("medication name", max_length=200)
    strength = models.CharField(max_length=100, blank=True, help_text="For example 500 mg or 5 mg/5 mL.")
    dose = models.CharField(max_length=100, help_text="For example 1 tablet or 10 mL.")
    route = models.CharField(max_length=16, choices=Route.choices, default=Route.ORAL)
    frequency = models.CharField(max_length=100, help_text="For example three times a day.")
    duration = models.CharField(max_length=100, blank=True, help_text="For example 7 days.")
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1, "Dispense at least one.")], help_text="How many units to dispense."
    )
    instructions = EncryptedTextField(blank=True, max_length=1000)

    class Meta:
        ordering = ["prescription_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prescription", "position"], name="consult_rx_item_position"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="consult_rx_item_quantity_positive"),
            models.CheckConstraint(condition=Q(route__in=Route.values), name="consult_rx_item_route_valid"),
            models.CheckConstraint(
                condition=~Q(medication="") & ~Q(dose="") & ~Q(frequency=""),
                name="consult_rx_item_required_text",
            ),
        ]

    def __str__(self) -> str:
        return " ".join(part for part in (self.medication, self.strength) if part)


class RecordType(models.TextChoices):
    CONSULTATION = "consultation", "Consultation"
    LAB_REPORT = "lab_report", "Lab report"
    DIAGNOSIS = "diagnosis", "Diagnosis"
    TREATMENT = "treatment", "Treatment"
    FOLLOW_UP = "follow_up", "Follow-up"


def result_attachment_path(instance: Result, filename: str) -> str:
    # Never the client's file name in the path (it can carry the patient's name); it is kept in
    # attachment_name for downloads.
    suffix = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(
        instance.attachment_content_type, ""
    )
    return f"results/{instance.organization_id}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


class Result(models.Model):
    """A lab or imaging result, or another record filed with a consultation, with an optional file."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="results")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="results")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    record_type = models.CharField(max_length=16, choices=RecordType.choices, default=RecordType.LAB_REPORT)
    test_name = models.CharField("test or record", max_length=200)
    value = EncryptedCharField(max_length=100, blank=True, help_text="A number, or text such as 'positive'.")
    unit = models.CharField(max_length=30, blank=True)
    reference_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    reference_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    # Computed from value and range when the result is filed; null when it cannot be (text value, no range).
    is_abnormal = models.BooleanField("abnormal", null=True, blank=True, editable=False)
    notes = EncryptedTextField(blank=True, max_length=TEXT_MAX)
    # Written encrypted, 0600, and read back only through the scoped download (opd.core.storage).
    attachment = models.FileField(
        upload_to=result_attachment_path, storage=encrypted_storage, blank=True, max_length=255
    )
    attachment_name = models.CharField(max_length=255, blank=True, editable=False)
    attachment_content_type = models.CharField(max_length=100, blank=True, editable=False)
    attachment_size = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "created_at"], name="consult_result_patient_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reference_low__isnull=True)
                | Q(reference_high__isnull=True)
                | Q(reference_low__lte=F("reference_high")),
                name="consult_result_range_ordered",
                violation_error_message="The low end of the reference range must not exceed the high end.",
            ),
            models.CheckConstraint(
                condition=Q(record_type__in=RecordType.values), name="consult_result_record_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test_name} #{self.pk}"

    def clean(self) -> None:
        if (
            self.reference_low is not None
            and self.reference_high is not None
            and self.reference_low > self.reference_high
        ):
            raise ValidationError({"reference_high": "The high end must not be below the low end."})

    @property
    def reference_range(self) -> str:
        def show(value: Decimal | None) -> str:
            return "" if value is None else f"{value.normalize():f}"

        if self.reference_low is None and self.reference_high is None:
            return ""
        if self.reference_high is None:
            return f"≥ {show(self.reference_low)}"
        if self.reference_low is None:
            return f"≤ {show(self.reference_high)}"
        return f"{show(self.reference_low)}-{show(self.reference_high)}"


class CareCategory(models.TextChoices):
    OBSERVATION = "observation", "Observation"
    MEDICATION = "medication", "Medication"
    HYGIENE = "hygiene", "Hygiene"
    NUTRITION = "nutrition", "Nutrition"
    INCIDENT = "incident", "Incident"
    OTHER = "other", "Other"


class CareNote(models.Model):
    """A nurse's or staff member's note about a patient at a clinic. Not part of the doctor's notes."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="care_notes")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="care_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=16, choices=CareCategory.choices)
    text = EncryptedTextField(max_length=TEXT_MAX)
    date = models.DateField(editable=False, help_text="The day in the clinic's time zone.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Analytics: care notes per clinic and day.
            models.Index(
                fields=["organization", "clinic", "created_at"], name="consult_carenote_clinic_time"
            ),
            models.Index(fields=["patient", "created_at"], name="consult_carenote_patient_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(category__in=CareCategory.values), name="consult_carenote_category_valid"
            ),
            models.CheckConstraint(condition=~Q(text=""), name="consult_carenote_has_text"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} note #{self.pk}"


class TriageObservation(News2Readings, models.Model):
    """Vitals a nurse (or a doctor) takes while a checked-in patient waits, before the consultation.

    Appended, never edited: each new set is a new row, so the latest is what counts (the queue's NEWS2,
    the doctor's prefill, the re-score reminder) and the earlier ones stay as the trend. The readings,
    their validators and the NEWS2 columns are the consultation's (not encrypted, like the consultation's
    vitals: numbers the live queue and analytics read); NEWS2 is stored when the row is written
    (consultations.services.triage). `rescore_reminded_at` is the beat task's claim: one reminder per
    observation that went stale (consultations.services.triage.triage_rescore_reminders).
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="triage_observations")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="triage_observations")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    systolic_bp = models.PositiveSmallIntegerField(
        "systolic BP", null=True, blank=True, validators=_plausible("systolic_bp"), help_text="mmHg"
    )
    diastolic_bp = models.PositiveSmallIntegerField(
        "diastolic BP", null=True, blank=True, validators=_plausible("diastolic_bp"), help_text="mmHg"
    )
    pulse = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_plausible("pulse"), help_text="beats/min"
    )
    respiratory_rate = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=_plausible("respiratory_rate"), help_text="breaths/min"
    )
    temperature = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_plausible("temperature"),
        help_text="°C, one decimal",
    )
    spo2 = models.PositiveSmallIntegerField(
        "SpO2", null=True, blank=True, validators=_plausible("spo2"), help_text="%"
    )
    weight_kg = models.DecimalField(
        "weight",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=_plausible("weight_kg"),
        help_text="kg",
    )
    height_cm = models.DecimalField(
        "height",
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=_plausible("height_cm"),
        help_text="cm",
    )
    on_supplemental_oxygen = models.BooleanField(
        "on supplemental oxygen", null=True, blank=True, help_text="Unknown until recorded."
    )
    consciousness = models.CharField(
        "level of consciousness (ACVPU)", max_length=1, choices=Consciousness.choices, blank=True
    )
    hypercapnic_respiratory_failure = models.BooleanField(
        "hypercapnic respiratory failure (use SpO2 scale 2)",
        default=False,
        help_text="For a patient with a prescribed SpO2 target of 88-92 %.",
    )

    news2_respiratory_rate = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_spo2 = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_air_or_oxygen = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_systolic_bp = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_pulse = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_consciousness = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_temperature = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    news2_total = models.PositiveSmallIntegerField("NEWS2", null=True, blank=True, editable=False)
    news2_band = models.CharField(
        "NEWS2 clinical risk", max_length=10, choices=News2Band.choices, blank=True, editable=False
    )
    rescore_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["appointment", "recorded_at"], name="consult_triage_appt_time"),
            models.Index(fields=["organization", "clinic", "recorded_at"], name="consult_triage_clinic_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(consciousness="") | Q(consciousness__in=Consciousness.values),
                name="consult_triage_consciousness_valid",
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True})
                    | Q(**{f"{name}__gte": VITAL_RANGES[name][1], f"{name}__lte": VITAL_RANGES[name][2]}),
                    name=f"consult_triage_{name}_plausible",
                )
                for name in VITAL_RANGES
            ],
            models.CheckConstraint(
                condition=Q(diastolic_bp__isnull=True)
                | Q(systolic_bp__isnull=True)
                | Q(diastolic_bp__lt=F("systolic_bp")),
                name="consult_triage_diastolic_below_systolic",
                violation_error_message="The diastolic pressure must be below the systolic.",
            ),
            models.CheckConstraint(
                condition=Q(news2_total__isnull=True, news2_band="")
                | Q(news2_total__isnull=False, news2_band__in=News2Band.values),
                name="consult_triage_news2_band_with_total",
            ),
        ]

    def __str__(self) -> str:
        return f"Triage observation #{self.pk}"

    def clean(self) -> None:
        if (
            self.diastolic_bp is not None
            and self.systolic_bp is not None
            and self.diastolic_bp >= self.systolic_bp
        ):
            raise ValidationError(
                {
                    "diastolic_bp": f"The diastolic pressure ({self.diastolic_bp} mmHg) must be below the "
                    f"systolic ({self.systolic_bp} mmHg)."
                }
            )
