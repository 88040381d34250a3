"""Allergies under /api/v1/: GET/POST /patients/{id}/allergies/, POST /patients/{id}/allergies/no-known/,
GET/PATCH /allergies/{id}/.

Read: doctors in clinical standing, staff (nurses, reception) and the patient (their own record).
Write: doctors and staff; patients never, administrators neither (they run the organization and do
not read clinical data). Another organization's patient or allergy is 404. Every read of an allergy is
written in the access log (`record.viewed`), like the rest of the clinical record. Allergies are safety
data anyone treating or prescribing must see, so no care relationship is asked for (unlike notes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.permissions import has_role
from opd.core.api.schema import error_responses
from opd.core.api.serializers import StrictInputMixin
from opd.core.audit import record_access
from opd.core.models import Role, User
from opd.core.tenancy import signed_in_user

from ..models import Allergy, AllergyAssessment, AllergyCategory, AllergySeverity, AllergyStatus, Patient
from ..selectors import allergies_for, allergy_assessment, patients_for
from ..services import allergy_record, allergy_set_no_known_allergies, allergy_update

VIEWED = "record.viewed"

MEANINGS = {
    400: "Invalid input; `fields` names each problem. Nothing was written.",
    403: "The role may not do this: allergies are read by doctors, staff and the patient, and "
    "written by doctors and staff.",
    404: "Unknown, or not visible to this user (another organization's patient or allergy).",
    409: '`active_allergies`: the patient has active allergies, so "no known allergies" cannot be '
    "recorded; mark them inactive or entered in error first.",
}


class CanReadAllergies(BasePermission):
    message = "Allergies are open to doctors, clinic staff and the patient."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.DOCTOR, Role.STAFF, Role.PATIENT)


class CanWriteAllergies(BasePermission):
    message = "Only doctors and clinic staff record allergies."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.DOCTOR, Role.STAFF)


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def _who(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


class AllergySerializer(serializers.ModelSerializer):
    recorded_by = serializers.SerializerMethodField()

    class Meta:
        model = Allergy
        fields = [
            "id",
            "patient",
            "substance",
            "category",
            "reaction",
            "severity",
            "status",
            "recorded_by",
            "recorded_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(UserBriefSerializer(allow_null=True))
    def get_recorded_by(self, obj: Allergy) -> dict[str, Any] | None:
        return _who(obj.recorded_by)


class AllergyInputSerializer(StrictInputMixin, serializers.Serializer):
    substance = serializers.CharField(max_length=200)
    category = serializers.ChoiceField(choices=AllergyCategory.choices)
    reaction = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=AllergySeverity.choices)
    status = serializers.ChoiceField(
        choices=AllergyStatus.choices, required=False, default=AllergyStatus.ACTIVE
    )


class AllergyPatchSerializer(StrictInputMixin, serializers.Serializer):
    substance = serializers.CharField(max_length=200, required=False)
    category = serializers.ChoiceField(choices=AllergyCategory.choices, required=False)
    reaction = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=AllergySeverity.choices, required=False)
    status = serializers.ChoiceField(choices=AllergyStatus.choices, required=False)


class AllergyListSerializer(serializers.Serializer):
    assessment = serializers.ChoiceField(
        choices=AllergyAssessment.choices,
        help_text="has_allergies (an active allergy is recorded), no_known_allergies (someone recorded "
        "it: see no_known_allergies_at/by), or not_recorded (never asked, or only inactive entries).",
    )
    no_known_allergies_at = serializers.DateTimeField(allow_null=True)
    no_known_allergies_by = UserBriefSerializer(allow_null=True)
    allergies = AllergySerializer(
        many=True, help_text="Every entry, active first; inactive and entered in error too."
    )


def _log(user: User, rows: Iterable[Allergy]) -> None:
    for row in rows:
        record_access(
            actor=user,
            action=VIEWED,
            obj=row,
            organization_id=row.organization_id,
            patient_id=row.patient_id,
        )


def _allergy_list(request: Request, patient: Patient) -> Response:
    user = signed_in_user(request)
    rows = list(allergies_for(user).filter(patient=patient))
    rows.sort(key=lambda row: (not row.is_active, row.substance.lower(), row.pk))
    _log(user, rows)
    body = {
        "assessment": allergy_assessment(patient, [row for row in rows if row.is_active]).value,
        "no_known_allergies_at": patient.no_known_allergies_at,
        "no_known_allergies_by": _who(patient.no_known_allergies_by),
        "allergies": rows,
    }
    return Response(AllergyListSerializer(body).data)


class PatientAllergiesView(GenericAPIView):
    """A patient's allergies and their assessment; record one."""

    queryset = Patient.objects.none()
    serializer_class = AllergyListSerializer
    lookup_url_kwarg = "patient_id"

    def get_permissions(self):
        if self.request.method == "GET":
            return [CanReadAllergies()]
        return [CanWriteAllergies()]

    def get_queryset(self):
        return patients_for(self.request.user)

    @extend_schema(
        summary="A patient's allergies",
        responses={200: AllergyListSerializer, **error_responses(401, 403, 404, descriptions=MEANINGS)},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        return _allergy_list(request, self.get_object())

    @extend_schema(
        summary="Record an allergy",
        description='An active allergy clears a "no known allergies" statement.',
        request=AllergyInputSerializer,
        responses={201: AllergySerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        data = AllergyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        allergy = allergy_record(actor=signed_in_user(request), patient=patient, **data.validated_data)
        return Response(AllergySerializer(allergy).data, status=status.HTTP_201_CREATED)


class NoKnownAllergiesView(GenericAPIView):
    """Record that the patient was asked and has no known allergies."""

    queryset = Patient.objects.none()
    serializer_class = AllergyListSerializer
    lookup_url_kwarg = "patient_id"
    permission_classes = [CanWriteAllergies]

    def get_queryset(self):
        return patients_for(self.request.user)

    @extend_schema(
        summary="Record no known allergies",
        request=None,
        responses={200: AllergyListSerializer, **error_responses(401, 403, 404, 409, descriptions=MEANINGS)},
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = self.get_object()
        patient = allergy_set_no_known_allergies(actor=signed_in_user(request), patient=patient)
        return _allergy_list(request, patient)


class AllergyDetailView(GenericAPIView):
    """One allergy: read it, or change it (details, or status: inactive, entered in error)."""

    queryset = Allergy.objects.none()
    serializer_class = AllergySerializer

    def get_permissions(self):
        if self.request.method == "GET":
            return [CanReadAllergies()]
        return [CanWriteAllergies()]

    def get_queryset(self):
        return allergies_for(self.request.user)

    @extend_schema(
        summary="Show an allergy",
        responses={200: AllergySerializer, **error_responses(401, 403, 404, descriptions=MEANINGS)},
    )
    def get(self, request: Request, pk: int) -> Response:
        allergy = self.get_object()
        _log(signed_in_user(request), [allergy])
        return Response(AllergySerializer(allergy).data)

    @extend_schema(
        summary="Change an allergy",
        request=AllergyPatchSerializer,
        responses={200: AllergySerializer, **error_responses(400, 401, 403, 404, descriptions=MEANINGS)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        allergy = self.get_object()
        data = AllergyPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        allergy = allergy_update(actor=signed_in_user(request), allergy=allergy, **data.validated_data)
        return Response(AllergySerializer(allergy).data)
