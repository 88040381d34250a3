"""GET /api/v1/appointments/{id}/calendar.ics: an appointment as an iCalendar file, for API clients.
GET /api/v1/me/accesses/: who opened the signed-in patient's record (as the portal page shows it).

Mounted from opd/api_urls.py with `path("", include("portal.api"))`. Token or session auth; the
appointment is looked up through appointments_for(user), so a patient gets only their own (another
id answers 404) and clinic users those of their clinics.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opd.core.api.schema import error_responses
from opd.core.models import AuditEvent
from opd.core.tenancy import signed_in_user
from patients.selectors import patients_for

from . import ics
from .selectors import ACCESS_LABELS, describe_accesses, my_appointments, record_accesses


class AppointmentCalendarView(APIView):
    @extend_schema(
        summary="Download an appointment as an iCalendar file",
        description="RFC 5545, one VEVENT with times in UTC; import it into any calendar app.",
        responses={
            (200, "text/calendar"): OpenApiTypes.BINARY,
            **error_responses(401, 404),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        appointment = get_object_or_404(my_appointments(signed_in_user(request)), pk=pk)
        return ics.response(request, appointment)

    def perform_content_negotiation(self, request, force=False):
        # A calendar client asks for text/calendar, which the JSON renderer cannot offer; answering 406
        # would refuse it. The file itself is a plain HttpResponse, and errors stay in the JSON shape.
        return super().perform_content_negotiation(request, force=True)


class RecordAccessSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When, in UTC.")
    time_zone = serializers.CharField(help_text="The clinic's time zone, to show `at` in.")
    kind = serializers.ChoiceField(choices=list(ACCESS_LABELS), help_text="What kind of access.")
    description = serializers.CharField(source="label", help_text="The kind, in words.")
    role = serializers.CharField(help_text="The role of who opened the record.")
    clinic = serializers.CharField(help_text="The clinic's name; empty for a read across clinics.")
    name = serializers.CharField(
        help_text="Who, by name, where the organization shows names to patients; otherwise empty."
    )
    with_reason = serializers.BooleanField(help_text="Opened with a stated reason (no appointment).")


class IsPatient(BasePermission):
    message = "Only a patient sees who opened their own record."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_patient)


class MyRecordAccessesView(GenericAPIView):
    queryset = AuditEvent.objects.none()
    serializer_class = RecordAccessSerializer
    permission_classes = [IsPatient]

    @extend_schema(
        summary="Who opened my record",
        description="Reads of the signed-in patient's clinical record by others (their own left out), newest "
        "first, paginated. Staff and doctors are refused (403): this is the patient's own view.",
        responses={
            200: RecordAccessSerializer(many=True),
            **error_responses(
                401, 403, 404, descriptions={404: "No such page of the list (`page` past the last)."}
            ),
        },
    )
    def get(self, request: Request) -> Response:
        user = signed_in_user(request)
        patient = patients_for(user).first()
        events = record_accesses(user, patient) if patient else AuditEvent.objects.none()
        page = self.paginate_queryset(events)
        rows = describe_accesses(list(page or []), patient) if patient else []
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


urlpatterns = [
    path("me/accesses/", MyRecordAccessesView.as_view(), name="my-record-accesses"),
    path(
        "appointments/<int:pk>/calendar.ics",
        AppointmentCalendarView.as_view(),
        name="appointment-calendar",
    ),
]
