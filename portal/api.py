"""GET /api/v1/appointments/{id}/calendar.ics: an appointment as an iCalendar file, for API clients.

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
from rest_framework.request import Request
from rest_framework.views import APIView

from opd.core.api.schema import error_responses
from opd.core.tenancy import signed_in_user

from . import ics
from .selectors import my_appointments


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


urlpatterns = [
    path(
        "appointments/<int:pk>/calendar.ics",
        AppointmentCalendarView.as_view(),
        name="appointment-calendar",
    ),
]
