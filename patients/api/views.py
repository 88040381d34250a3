"""Patients: the organization's master patient index. Read by everyone in scope, written by admins and staff."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from opd.core.api.exceptions import error_body
from opd.core.api.permissions import InClinicalStanding, IsClinicStaff
from opd.core.tenancy import signed_in_user

from ..filters import PatientFilter
from ..models import Patient, PatientStatus
from ..selectors import patients_for
from ..services import PossibleDuplicate, patient_create, patient_set_status, patient_update
from .serializers import (
    DuplicateCandidateSerializer,
    PatientCreateSerializer,
    PatientSerializer,
    PossibleDuplicateSerializer,
)


class PatientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and read: anyone signed in, within patients_for (a patient sees only their own record).
    Register, edit, deactivate, reactivate: admins and staff. Patients are never deleted."""

    queryset = Patient.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = PatientSerializer
    filterset_class = PatientFilter

    def get_queryset(self):
        return patients_for(self.request.user)

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [IsAuthenticated(), InClinicalStanding()]
        return [IsClinicStaff()]

    def get_serializer_class(self):
        return PatientCreateSerializer if self.action == "create" else PatientSerializer

    @extend_schema(
        request=PatientCreateSerializer,
        responses={
            201: PatientSerializer,
            409: OpenApiResponse(
                PossibleDuplicateSerializer,
                description="possible_duplicate: the organization may already know this person (same "
                "date of birth and a similar name, or the same phone number); the candidates are listed. "
                "Nothing was registered.",
            ),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            patient = patient_create(actor=request.user, **serializer.validated_data)
        except PossibleDuplicate as exc:
            body = error_body(exc.code, exc.message, exc.fields)
            body["error"]["candidates"] = [DuplicateCandidateSerializer.of(c) for c in exc.candidates]
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        patient = self.get_object()
        serializer = self.get_serializer(patient, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        patient = patient_update(actor=request.user, patient=patient, **serializer.validated_data)
        return Response(PatientSerializer(patient).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(request=None, responses=PatientSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        return self._set_status(PatientStatus.INACTIVE)

    @extend_schema(request=None, responses=PatientSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        return self._set_status(PatientStatus.ACTIVE)

    def _set_status(self, new_status: str) -> Response:
        patient = patient_set_status(
            actor=signed_in_user(self.request), patient=self.get_object(), status=new_status
        )
        return Response(PatientSerializer(patient).data)
