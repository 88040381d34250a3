"""GET /api/v1/patients/{id}/archive/: a patient's archived clinical content, for clinicians.

Mounted from opd/api_urls.py. Doctors in clinical standing (archived appointments of the clinics they
work at), under the care relationship or a stated reason like the live record (consultations.access);
superusers. Admins, staff and patients are refused (403): admins read no clinical notes, archived or
not. Logged: one access row per archived row answered (`record.viewed`, via archive).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from consultations.access import VIEWED
from consultations.api.access import REASON_PARAMETERS, open_patient_record
from opd.core.api.schema import error_responses
from opd.core.audit import record_access
from opd.core.tenancy import check_clinical_standing

from .models import ArchivedRecord
from .selectors import archived_clinical_rows, may_read_archived_clinical_content, unsealed_data


class ArchivedRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = ArchivedRecord
        fields = ("id", "model", "object_pk", "root_model", "root_pk", "archived_at", "data")

    def to_representation(self, instance: ArchivedRecord) -> dict:
        # The archive keeps encrypted fields sealed; the clinician reads them as they were.
        answer = super().to_representation(instance)
        answer["data"] = unsealed_data(instance.data)
        return answer


class ArchivedClinicalAccess(BasePermission):
    message = "Archived clinical content is open to doctors only."

    def has_permission(self, request, view) -> bool:
        check_clinical_standing(request.user)
        return may_read_archived_clinical_content(request.user)


class PatientArchiveView(GenericAPIView):
    queryset = ArchivedRecord.objects.none()
    serializer_class = ArchivedRowSerializer
    permission_classes = [ArchivedClinicalAccess]

    @extend_schema(
        summary="A patient's archived clinical content",
        description="Consultations, addenda, prescriptions and results moved to the archive with their "
        "appointment, as archived (Django's serialization). A doctor without a care relationship with the "
        "patient is asked for a reason (403 `reason_required`).",
        parameters=REASON_PARAMETERS,
        responses={
            200: ArchivedRowSerializer(many=True),
            **error_responses(
                400,
                401,
                403,
                404,
                descriptions={
                    400: "The `reason` given is too short.",
                    403: "Not a doctor, or `reason_required` (field `reason`): no care relationship.",
                },
            ),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        user, patient, reason = open_patient_record(request, pk)
        page = self.paginate_queryset(archived_clinical_rows(user, patient.pk))
        rows = list(page or [])
        for row in rows:
            record_access(
                actor=user,
                action=VIEWED,
                obj=row,
                organization_id=row.organization_id,
                patient_id=patient.pk,
                reason=reason,
                via="archive",
                model=row.model,
            )
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


urlpatterns = [path("patients/<int:pk>/archive/", PatientArchiveView.as_view(), name="patient-archive")]
