"""The access log and break the glass for the API's viewsets of clinical rows: one mixin, every door.

What a list logs: one `record.viewed` row per record on the page answered (the page, not the whole
result set), written in one INSERT with the request. What a detail logs: one row for the record, with
the action its view names (`read_actions`: `record.viewed`, `record.downloaded`), and the reason the
access stood on where one was required.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.errors import NotFound
from opd.core.models import User
from opd.core.tenancy import signed_in_user
from patients.models import Patient
from patients.selectors import patients_for

from ..access import REASON_HEADER, REASON_PARAM, VIEWED, in_care, log_reads, open_record, stated_reason

REASON_PARAMETERS = [
    OpenApiParameter(
        REASON_PARAM,
        OpenApiTypes.STR,
        OpenApiParameter.QUERY,
        description="Why you open this patient's record without a care relationship (break the glass): "
        "asked for with 403 `reason_required`; logged and reviewed. Or the X-Access-Reason header.",
    ),
    OpenApiParameter(REASON_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, description="As `reason`."),
]


def open_patient_record(request: Request, pk: int) -> tuple[User, Patient, str]:
    """The signed-in person, the patient `pk` in their scope (404 otherwise) and the reason the break-the-
    glass rule asked for ("" where none was needed): for views that show a patient's whole record."""
    user = signed_in_user(request)
    patient = patients_for(user).filter(pk=pk).first()
    if patient is None:
        raise NotFound("No such patient.")
    reason = open_record(
        user,
        patient_id=patient.pk,
        organization_id=patient.organization_id,
        clinic_id=None,
        reason=stated_reason(request),
    )
    return user, patient, reason


class ClinicalReadLogMixin:
    """For GenericViewSets of clinical rows (with organization, clinic, patient). Lists keep to the
    patients in a doctor's care; details of another patient ask for a reason; both are logged."""

    read_actions: dict[str, str] = {"retrieve": VIEWED}
    # Whether the care relationship applies (not for care notes: staff read them without one).
    break_glass = True
    # The field and attribute naming who wrote a row: their own records never need a reason.
    author_field = "doctor__user"

    def author_id(self, obj: Any) -> int | None:
        return obj.doctor.user_id

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = signed_in_user(request)
        queryset = self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        if self.break_glass:
            queryset = in_care(queryset, user, author=self.author_field)
        page = self.paginate_queryset(queryset)  # type: ignore[attr-defined]
        rows = list(page) if page is not None else list(queryset)
        log_reads(user, VIEWED, rows)
        data = self.get_serializer(rows, many=True).data  # type: ignore[attr-defined]
        return self.get_paginated_response(data) if page is not None else Response(data)  # type: ignore[attr-defined]

    def get_object(self) -> Any:
        obj = super().get_object()  # type: ignore[misc]
        action = self.read_actions.get(self.action)  # type: ignore[attr-defined]
        if action is not None:
            user = signed_in_user(self.request)  # type: ignore[attr-defined]
            reason = ""
            if self.break_glass:
                reason = open_record(
                    user,
                    patient_id=obj.patient_id,
                    organization_id=obj.organization_id,
                    clinic_id=obj.clinic_id,
                    reason=stated_reason(self.request),  # type: ignore[attr-defined]
                    author_id=self.author_id(obj),
                )
            log_reads(user, action, [obj], reason=reason)
        return obj
