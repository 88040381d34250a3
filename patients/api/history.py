"""Problem list and current medications under /api/v1/, mirroring the allergy endpoints:
GET/POST /patients/{id}/problems/, GET/PATCH /problems/{id}/, POST /problems/{id}/resolve/,
GET/POST /patients/{id}/medications/, GET/PATCH /medications/{id}/, POST /medications/{id}/stop/.

The same readers and writers as allergies (patients/api/allergies.py): read by doctors in clinical
standing, staff and the patient (their own record); written by doctors and staff. Another
organization's patient or entry is 404. Every entry read is written in the access log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.schema import error_responses
from opd.core.api.serializers import StrictInputMixin
from opd.core.audit import record_access
from opd.core.models import User
from opd.core.tenancy import signed_in_user

from ..models import ICD10_PATTERN, Medication, MedicationStatus, Patient, Problem, ProblemStatus
from ..selectors import (
    medication_list_order,
    medications_for,
    patients_for,
    problem_list_order,
    problems_for,
)
from ..services import (
    medication_add,
    medication_stop,
    medication_update,
    problem_add,
    problem_resolve,
    problem_update,
)
from .allergies import VIEWED, CanReadAllergies, CanWriteAllergies, UserBriefSerializer, _who

MEANINGS = {
    400: "Invalid input; `fields` names each problem. Nothing was written.",
    403: "The role may not do this: problems and medications are read by doctors, staff and the "
    "patient, and written by doctors and staff.",
    404: "Unknown, or not visible to this user (another organization's patient or entry).",
    409: "`entered_in_error`: an entry marked entered in error cannot be resolved or stopped.",
}
ICD10_HELP = (
    f"Optional ICD-10 code, case-insensitive; stored upper case with its dot (e119 -> E11.9). "
    f"Shape: {ICD10_PATTERN}"
)


def _log(user: User, rows: Iterable[Problem | Medication]) -> None:
    for row in rows:
        record_access(
            actor=user, action=VIEWED, obj=row, organization_id=row.organization_id, patient_id=row.patient_id
        )


class _RecordedBy(serializers.ModelSerializer):
    recorded_by = serializers.SerializerMethodField()

    @extend_schema_field(UserBriefSerializer(allow_null=True))
    def get_recorded_by(self, obj: Model) -> dict[str, Any] | None:
        return _who(obj.recorded_by)  # type: ignore[attr-defined]


class ProblemSerializer(_RecordedBy):
    class Meta:
        model = Problem
        fields = [
            "id",
            "patient",
            "description",
            "icd10_code",
            "status",
            "onset_date",
            "resolved_date",
            "recorded_by",
            "recorded_at",
            "updated_at",
        ]
        read_only_fields = fields


class ProblemInputSerializer(StrictInputMixin, serializers.Serializer):
    description = serializers.CharField(max_length=300)
    icd10_code = serializers.CharField(
        max_length=12, required=False, allow_blank=True, default="", help_text=ICD10_HELP
    )
    status = serializers.ChoiceField(
        choices=ProblemStatus.choices, required=False, default=ProblemStatus.ACTIVE
    )
    onset_date = serializers.DateField(required=False, allow_null=True, default=None)
    resolved_date = serializers.DateField(required=False, allow_null=True, default=None)


class ProblemPatchSerializer(StrictInputMixin, serializers.Serializer):
    description = serializers.CharField(max_length=300, required=False)
    icd10_code = serializers.CharField(max_length=12, required=False, allow_blank=True, help_text=ICD10_HELP)
    status = serializers.ChoiceField(choices=ProblemStatus.choices, required=False)
    onset_date = serializers.DateField(required=False, allow_null=True)
    resolved_date = serializers.DateField(required=False, allow_null=True)


class ResolveSerializer(StrictInputMixin, serializers.Serializer):
    resolved_date = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Today if not given."
    )


class MedicationSerializer(_RecordedBy):
    class Meta:
        model = Medication
        fields = [
            "id",
            "patient",
            "name",
            "dose",
            "frequency",
            "status",
            "started_on",
            "stopped_on",
            "recorded_by",
            "recorded_at",
            "updated_at",
        ]
        read_only_fields = fields


class MedicationInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dose = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    frequency = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(
        choices=MedicationStatus.choices, required=False, default=MedicationStatus.ACTIVE
    )
    started_on = serializers.DateField(required=False, allow_null=True, default=None)
    stopped_on = serializers.DateField(required=False, allow_null=True, default=None)


class MedicationPatchSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    dose = serializers.CharField(max_length=100, required=False, allow_blank=True)
    frequency = serializers.CharField(max_length=100, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=MedicationStatus.choices, required=False)
    started_on = serializers.DateField(required=False, allow_null=True)
    stopped_on = serializers.DateField(required=False, allow_null=True)


class StopSerializer(StrictInputMixin, serializers.Serializer):
    stopped_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Today if not given."
    )


class _ReadWrite(GenericAPIView):
    def get_permissions(self):
        if self.request.method == "GET":
            return [CanReadAllergies()]
        return [CanWriteAllergies()]


class PatientProblemsView(_ReadWrite):
    """A patient's problem list (active first, then resolved, then entered in error); add a problem."""

    queryset = Patient.objects.none()
    serializer_class = ProblemSerializer
    lookup_url_kwarg = "patient_id"
    pagination_class = None

    def get_queryset(self):
        return patients_for(self.request.user)

    @extend_schema(
        summary="A patient's problem list",
        responses={
            200: ProblemSerializer(many=True),
            **error_responses(401, 403, 404, descriptions=MEANINGS),
        },
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        user = signed_in_user(request)
        rows = sorted(problems_for(user).filter(patient=patient), key=problem_list_order)
        _log(user, rows)
        return Response(ProblemSerializer(rows, many=True).data)

    @extend_schema(
        summary="Add a problem",
        request=ProblemInputSerializer,
        responses={201: ProblemSerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        data = ProblemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problem = problem_add(actor=signed_in_user(request), patient=patient, **data.validated_data)
        return Response(ProblemSerializer(problem).data, status=status.HTTP_201_CREATED)


class ProblemDetailView(_ReadWrite):
    """One problem: read it, or change it (details, or status: resolved, active again, entered in error)."""

    queryset = Problem.objects.none()
    serializer_class = ProblemSerializer

    def get_queryset(self):
        return problems_for(self.request.user)

    @extend_schema(
        summary="Show a problem",
        responses={200: ProblemSerializer, **error_responses(401, 403, 404, descriptions=MEANINGS)},
    )
    def get(self, request: Request, pk: int) -> Response:
        problem = self.get_object()
        _log(signed_in_user(request), [problem])
        return Response(ProblemSerializer(problem).data)

    @extend_schema(
        summary="Change a problem",
        request=ProblemPatchSerializer,
        responses={200: ProblemSerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        problem = self.get_object()
        data = ProblemPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problem = problem_update(actor=signed_in_user(request), problem=problem, **data.validated_data)
        return Response(ProblemSerializer(problem).data)


class ProblemResolveView(GenericAPIView):
    """Mark a problem resolved."""

    queryset = Problem.objects.none()
    serializer_class = ProblemSerializer
    permission_classes = [CanWriteAllergies]

    def get_queryset(self):
        return problems_for(self.request.user)

    @extend_schema(
        summary="Resolve a problem",
        request=ResolveSerializer,
        responses={200: ProblemSerializer, **error_responses(400, 401, 403, 404, 409, descriptions=MEANINGS)},
    )
    def post(self, request: Request, pk: int) -> Response:
        problem = self.get_object()
        data = ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        problem = problem_resolve(actor=signed_in_user(request), problem=problem, **data.validated_data)
        return Response(ProblemSerializer(problem).data)


class PatientMedicationsView(_ReadWrite):
    """A patient's medications (active first, then stopped, then entered in error); add one."""

    queryset = Patient.objects.none()
    serializer_class = MedicationSerializer
    lookup_url_kwarg = "patient_id"
    pagination_class = None

    def get_queryset(self):
        return patients_for(self.request.user)

    @extend_schema(
        summary="A patient's medications",
        responses={
            200: MedicationSerializer(many=True),
            **error_responses(401, 403, 404, descriptions=MEANINGS),
        },
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        user = signed_in_user(request)
        rows = sorted(medications_for(user).filter(patient=patient), key=medication_list_order)
        _log(user, rows)
        return Response(MedicationSerializer(rows, many=True).data)

    @extend_schema(
        summary="Add a medication",
        request=MedicationInputSerializer,
        responses={201: MedicationSerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        data = MedicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        medication = medication_add(actor=signed_in_user(request), patient=patient, **data.validated_data)
        return Response(MedicationSerializer(medication).data, status=status.HTTP_201_CREATED)


class MedicationDetailView(_ReadWrite):
    """One medication: read it, or change it (details, or status: stopped, active again, entered in
    error)."""

    queryset = Medication.objects.none()
    serializer_class = MedicationSerializer

    def get_queryset(self):
        return medications_for(self.request.user)

    @extend_schema(
        summary="Show a medication",
        responses={200: MedicationSerializer, **error_responses(401, 403, 404, descriptions=MEANINGS)},
    )
    def get(self, request: Request, pk: int) -> Response:
        medication = self.get_object()
        _log(signed_in_user(request), [medication])
        return Response(MedicationSerializer(medication).data)

    @extend_schema(
        summary="Change a medication",
        request=MedicationPatchSerializer,
        responses={200: MedicationSerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        medication = self.get_object()
        data = MedicationPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        medication = medication_update(
            actor=signed_in_user(request), medication=medication, **data.validated_data
        )
        return Response(MedicationSerializer(medication).data)


class MedicationStopView(GenericAPIView):
    """Stop a medication."""

    queryset = Medication.objects.none()
    serializer_class = MedicationSerializer
    permission_classes = [CanWriteAllergies]

    def get_queryset(self):
        return medications_for(self.request.user)

    @extend_schema(
        summary="Stop a medication",
        request=StopSerializer,
        responses={
            200: MedicationSerializer,
            **error_responses(400, 401, 403, 404, 409, descriptions=MEANINGS),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        medication = self.get_object()
        data = StopSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        medication = medication_stop(
            actor=signed_in_user(request), medication=medication, **data.validated_data
        )
        return Response(MedicationSerializer(medication).data)
