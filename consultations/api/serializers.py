"""The clinical record as the API shows it, and the bodies of its writes.

Consultations carry their vitals as a `vitals` object (read and written alike) and the stored NEWS2 as
`news2` ({total, band, spo2_scale, sub_scores}), or null with `news2_missing` naming what is not yet
recorded. Times go out in UTC. Body ids are looked up in the requesting user's scope (404 otherwise).
Serializers only check the shape of the input; the services hold the rules.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from opd.core.api.serializers import ScopedPrimaryKeyField, StrictInputMixin
from opd.core.models import Clinic, User
from opd.core.tenancy import clinics_for
from patients.models import Patient
from patients.selectors import patients_for
from scheduling.api.serializers import (
    AppointmentSerializer,
    ClinicBriefSerializer,
    DoctorBriefSerializer,
    PatientBriefSerializer,
    UtcDateTimeField,
)
from scheduling.models import Appointment
from scheduling.selectors import appointments_for

from .. import news2
from ..models import (
    NOTE_FIELDS,
    VITAL_FIELDS,
    Addendum,
    CareNote,
    Consultation,
    Prescription,
    PrescriptionItem,
    Result,
    TriageObservation,
)
from ..selectors import consultations_for
from ..services import ITEM_FIELDS, is_rescore_due

NUMBER = {"coerce_to_string": False}


def person_name(user: User | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


class VitalsSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Vitals as typed readings; out-of-range values are refused naming the field. BMI is derived."""

    bmi = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        read_only=True,
        allow_null=True,
        coerce_to_string=False,
        help_text="kg/m², derived; null until both weight and height are recorded.",
    )
    recorded_at = UtcDateTimeField(source="vitals_recorded_at", read_only=True, allow_null=True)

    class Meta:
        model = Consultation
        fields = [*VITAL_FIELDS, "bmi", "recorded_at"]
        extra_kwargs = {"temperature": NUMBER, "weight_kg": NUMBER, "height_cm": NUMBER}

    def to_internal_value(self, data: Any) -> Any:
        derived = {
            "bmi": "Derived from weight and height; it cannot be entered.",
            "recorded_at": "Set when the vitals are written; it cannot be entered.",
        }
        if hasattr(data, "keys") and derived.keys() & set(data.keys()):
            raise serializers.ValidationError({key: [derived[key]] for key in derived if key in data})
        return super().to_internal_value(data)


class News2SubScoresSerializer(serializers.Serializer):
    respiratory_rate = serializers.IntegerField()
    spo2 = serializers.IntegerField()
    air_or_oxygen = serializers.IntegerField()
    systolic_bp = serializers.IntegerField()
    pulse = serializers.IntegerField()
    consciousness = serializers.IntegerField()
    temperature = serializers.IntegerField()


class News2ResponseSerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=[news2.ROUTINE, news2.WARD, news2.URGENT_WARD, news2.URGENT, news2.EMERGENCY],
        help_text="routine (0), ward (1-4), urgent_ward (a single parameter scoring 3), urgent (5-6), "
        "emergency (7+).",
    )
    title = serializers.CharField()
    action = serializers.CharField()
    monitoring = serializers.CharField()


class News2Serializer(serializers.Serializer):
    total = serializers.IntegerField()
    band = serializers.ChoiceField(
        choices=[news2.LOW, news2.LOW_MEDIUM, news2.MEDIUM, news2.HIGH],
        help_text="Clinical risk: low (0-4), low_medium (a single parameter scoring 3), medium (5-6), high (7+).",
    )
    band_label = serializers.CharField()
    spo2_scale = serializers.IntegerField(help_text="1, or 2 for hypercapnic respiratory failure.")
    sub_scores = News2SubScoresSerializer()
    response = News2ResponseSerializer(help_text="The clinical response the RCP 2017 chart asks for.")


class AddendumSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    created_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Addendum
        fields = ["id", "author", "text", "created_at"]
        read_only_fields = fields

    def get_author(self, obj: Addendum) -> str:
        return person_name(obj.author)


class ConsultationSerializer(serializers.ModelSerializer):
    patient = PatientBriefSerializer(read_only=True)
    doctor = DoctorBriefSerializer(read_only=True)
    clinic = ClinicBriefSerializer(read_only=True)
    started_at = UtcDateTimeField(read_only=True)
    completed_at = UtcDateTimeField(read_only=True, allow_null=True)
    vitals = VitalsSerializer(source="*", read_only=True)
    news2 = serializers.SerializerMethodField(help_text="Null until all seven NEWS2 parameters are recorded.")
    news2_missing = serializers.SerializerMethodField(help_text="The NEWS2 parameters not recorded yet.")
    addenda = AddendumSerializer(many=True, read_only=True)
    version = serializers.IntegerField(
        read_only=True,
        help_text="Bumped by every write to the record (notes, vitals, prescriptions, completion). Send it "
        "back with an edit or the completion: if the record changed since, the answer is 409 "
        "`version_conflict` and nothing is written.",
    )

    class Meta:
        model = Consultation
        fields = [
            "id",
            "status",
            "appointment",
            "patient",
            "doctor",
            "clinic",
            "started_at",
            "completed_at",
            "version",
            *NOTE_FIELDS,
            "vitals",
            "news2",
            "news2_missing",
            "addenda",
        ]
        read_only_fields = fields

    @extend_schema_field(News2Serializer(allow_null=True))
    def get_news2(self, obj: Consultation) -> dict[str, Any] | None:
        if obj.news2_total is None:
            return None
        return {
            "total": obj.news2_total,
            "band": obj.news2_band,
            "band_label": obj.get_news2_band_display(),
            "spo2_scale": obj.news2_spo2_scale,
            "sub_scores": obj.news2_sub_scores,
            "response": asdict(obj.news2_response) if obj.news2_response else None,
        }

    def get_news2_missing(self, obj: Consultation) -> list[str]:
        return obj.news2_missing


class ConsultationOpenSerializer(StrictInputMixin, serializers.Serializer):
    appointment = ScopedPrimaryKeyField(
        scope=appointments_for,
        noun="appointment",
        queryset=Appointment.objects.none(),
        help_text="A checked-in appointment assigned to you (or one already in consultation).",
    )


VERSION_HELP = (
    "The consultation's `version` this edit was made on. Optional (clients that send none overwrite "
    "whatever is there, as before); when sent and the record has changed since, the answer is 409 "
    "`version_conflict` naming what changed, and nothing is written."
)


class ConsultationUpdateSerializer(StrictInputMixin, serializers.ModelSerializer):
    """PATCH body: any of the notes, and `vitals` with any of its readings (null clears one)."""

    vitals = VitalsSerializer(source="*", required=False)
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text=VERSION_HELP
    )

    class Meta:
        model = Consultation
        fields = [*NOTE_FIELDS, "vitals", "version"]


class ConsultationCompleteSerializer(ConsultationUpdateSerializer):
    """POST body of complete (optional): the final values, saved with the completion in one step."""


class AddendumCreateSerializer(StrictInputMixin, serializers.Serializer):
    text = serializers.CharField(max_length=10_000)


# Prescriptions -----------------------------------------------------------------------------------------


class PrescriptionItemSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = PrescriptionItem
        fields = ["position", *ITEM_FIELDS]
        read_only_fields = ["position"]


class PrescriptionSerializer(serializers.ModelSerializer):
    patient = PatientBriefSerializer(read_only=True)
    doctor = DoctorBriefSerializer(read_only=True)
    clinic = ClinicBriefSerializer(read_only=True)
    items = PrescriptionItemSerializer(many=True, read_only=True)
    issued_at = UtcDateTimeField(read_only=True, allow_null=True)
    created_at = UtcDateTimeField(read_only=True)
    print_url = serializers.SerializerMethodField(help_text="The printable page.")

    class Meta:
        model = Prescription
        fields = [
            "id",
            "consultation",
            "patient",
            "doctor",
            "clinic",
            "notes",
            "items",
            "issued_at",
            "created_at",
            "print_url",
        ]
        read_only_fields = fields

    def get_print_url(self, obj: Prescription) -> str:
        return reverse("consultations:prescription-print", args=[obj.pk])


class PrescriptionCreateSerializer(StrictInputMixin, serializers.Serializer):
    consultation = ScopedPrimaryKeyField(
        scope=consultations_for,
        noun="consultation",
        queryset=Consultation.objects.none(),
        help_text="A draft consultation of yours.",
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    # An empty list is the service's to refuse: it names `items` rather than DRF's nested non-field key.
    items = PrescriptionItemSerializer(many=True, help_text="One or more medication lines.")
    allergy_override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        default="",
        help_text="Why a medicine matching an active allergy of the patient is prescribed anyway "
        "(409 `allergy_conflict` without it). Recorded in the audit trail.",
    )


class PrescriptionUpdateSerializer(StrictInputMixin, serializers.Serializer):
    """PATCH: `items` replaces every line; `notes` replaces the notes."""

    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    items = PrescriptionItemSerializer(many=True, required=False)
    allergy_override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        default="",
        help_text="Why a medicine matching an active allergy of the patient is prescribed anyway "
        "(409 `allergy_conflict` without it). Recorded in the audit trail.",
    )


# Results -----------------------------------------------------------------------------------------------


class ResultSerializer(serializers.ModelSerializer):
    patient = PatientBriefSerializer(read_only=True)
    recorded_by = serializers.SerializerMethodField()
    reference_low = serializers.DecimalField(
        max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True
    )
    reference_high = serializers.DecimalField(
        max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True
    )
    is_abnormal = serializers.BooleanField(
        allow_null=True,
        help_text="Outside the reference range; null when it cannot be said (text value, no range).",
    )
    attachment = serializers.SerializerMethodField(
        allow_null=True, help_text="Where to download the file, or null."
    )
    created_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Result
        fields = [
            "id",
            "consultation",
            "patient",
            "record_type",
            "test_name",
            "value",
            "unit",
            "reference_low",
            "reference_high",
            "reference_range",
            "is_abnormal",
            "notes",
            "attachment",
            "attachment_name",
            "attachment_content_type",
            "attachment_size",
            "recorded_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_recorded_by(self, obj: Result) -> str:
        return person_name(obj.recorded_by)

    @extend_schema_field(OpenApiTypes.URI)
    def get_attachment(self, obj: Result) -> str | None:
        if not obj.attachment:
            return None
        return reverse("result-attachment", args=[obj.pk])


class ResultCreateSerializer(StrictInputMixin, serializers.ModelSerializer):
    """JSON, or multipart/form-data with an `attachment` file (PDF, PNG or JPEG)."""

    consultation = ScopedPrimaryKeyField(
        scope=consultations_for, noun="consultation", queryset=Consultation.objects.none()
    )
    attachment = serializers.FileField(required=False, allow_empty_file=False)

    class Meta:
        model = Result
        fields = [
            "consultation",
            "record_type",
            "test_name",
            "value",
            "unit",
            "reference_low",
            "reference_high",
            "notes",
            "attachment",
        ]


# Care notes --------------------------------------------------------------------------------------------


class CareNoteSerializer(serializers.ModelSerializer):
    patient = PatientBriefSerializer(read_only=True)
    clinic = ClinicBriefSerializer(read_only=True)
    author = serializers.SerializerMethodField()
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = CareNote
        fields = ["id", "patient", "clinic", "author", "category", "text", "date", "created_at", "updated_at"]
        read_only_fields = fields

    def get_author(self, obj: CareNote) -> str:
        return person_name(obj.author)


class CareNoteCreateSerializer(StrictInputMixin, serializers.ModelSerializer):
    patient = ScopedPrimaryKeyField(scope=patients_for, noun="patient", queryset=Patient.objects.none())
    clinic = ScopedPrimaryKeyField(
        scope=clinics_for, noun="clinic", queryset=Clinic.objects.none(), help_text="One of your clinics."
    )

    class Meta:
        model = CareNote
        fields = ["patient", "clinic", "category", "text"]


class CareNoteUpdateSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = CareNote
        fields = ["category", "text"]


# History -----------------------------------------------------------------------------------------------


class HistoryEntrySerializer(serializers.Serializer):
    """One timeline item: `kind` says which of the keys below carries it."""

    kind = serializers.ChoiceField(
        choices=["appointment", "consultation", "prescription", "result", "care_note"]
    )
    id = serializers.IntegerField()
    at = UtcDateTimeField()
    appointment = AppointmentSerializer(required=False)
    consultation = ConsultationSerializer(required=False)
    prescription = PrescriptionSerializer(required=False)
    result = ResultSerializer(required=False)
    care_note = CareNoteSerializer(required=False)

    SERIALIZERS = {
        "appointment": AppointmentSerializer,
        "consultation": ConsultationSerializer,
        "prescription": PrescriptionSerializer,
        "result": ResultSerializer,
        "care_note": CareNoteSerializer,
    }

    def to_representation(self, entry) -> dict[str, Any]:
        serializer = self.SERIALIZERS[entry.kind](entry.item, context=self.context)
        return {
            "kind": entry.kind,
            "id": entry.id,
            "at": UtcDateTimeField().to_representation(entry.at),
            entry.kind: serializer.data,
        }


class TriageVitalsSerializer(serializers.ModelSerializer):
    class Meta:
        model = TriageObservation
        fields = list(VITAL_FIELDS)
        read_only_fields = fields
        extra_kwargs = {"temperature": NUMBER, "weight_kg": NUMBER, "height_cm": NUMBER}


class TriageObservationSerializer(serializers.ModelSerializer):
    """A set of triage vitals as the nurse recorded it, with its NEWS2 and clinical response."""

    recorded_at = UtcDateTimeField(read_only=True)
    recorded_by = serializers.SerializerMethodField(help_text="Who took the observations.")
    vitals = TriageVitalsSerializer(source="*", read_only=True)
    news2 = serializers.SerializerMethodField(help_text="Null until all seven NEWS2 parameters are recorded.")
    news2_missing = serializers.SerializerMethodField(help_text="The NEWS2 parameters not recorded.")
    rescore_due = serializers.SerializerMethodField(
        help_text="The observations are older than the interval of their clinical response "
        "(OPD_NEWS2_RESCORE_MINUTES): take them again."
    )

    class Meta:
        model = TriageObservation
        fields = [
            "id",
            "appointment",
            "patient",
            "recorded_at",
            "recorded_by",
            "vitals",
            "news2",
            "news2_missing",
            "rescore_due",
        ]
        read_only_fields = fields

    def get_recorded_by(self, obj: TriageObservation) -> str:
        return person_name(obj.recorded_by)

    @extend_schema_field(News2Serializer(allow_null=True))
    def get_news2(self, obj: TriageObservation) -> dict[str, Any] | None:
        if obj.news2_total is None:
            return None
        return {
            "total": obj.news2_total,
            "band": obj.news2_band,
            "band_label": obj.get_news2_band_display(),
            "spo2_scale": obj.news2_spo2_scale,
            "sub_scores": obj.news2_sub_scores,
            "response": asdict(obj.news2_response) if obj.news2_response else None,
        }

    def get_news2_missing(self, obj: TriageObservation) -> list[str]:
        return obj.news2_missing

    def get_rescore_due(self, obj: TriageObservation) -> bool:
        return is_rescore_due(obj, now=self.context.get("now") or timezone.now())


class TriageRecordSerializer(StrictInputMixin, serializers.ModelSerializer):
    """POST body: the readings taken, each optional (NEWS2 needs all seven of its parameters)."""

    class Meta:
        model = TriageObservation
        fields = list(VITAL_FIELDS)
        extra_kwargs = {"temperature": NUMBER, "weight_kg": NUMBER, "height_cm": NUMBER}
