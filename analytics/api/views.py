"""Statistics under /api/v1/analytics/, and a trivial endpoint that measures the framework's ceiling.

Who may call: admins (their organization), staff (their clinics) and doctors (their own figures);
patients are refused (403). A clinic, department or doctor outside the caller's scope answers 404 naming
the parameter. Every endpoint answers JSON, or CSV with ?format=csv.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opd.core.api.permissions import IsClinician
from opd.core.api.schema import error_responses
from opd.core.db_router import replica_view
from opd.core.tenancy import signed_in_user

from .. import selectors
from .renderers import CSVRenderer
from .serializers import (
    CareNotesDailySerializer,
    DailyStatisticsSerializer,
    News2DailySerializer,
    StatsQuerySerializer,
)

DAILY_COLUMNS = selectors.DAILY_COLUMNS
NEWS2_COLUMNS = selectors.NEWS2_COLUMNS
CARE_NOTE_COLUMNS = selectors.CARE_NOTE_COLUMNS

FILTERS = [
    OpenApiParameter(
        "date_from", OpenApiTypes.DATE, description="First day, YYYY-MM-DD (default: 29 days before date_to)."
    ),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Last day, inclusive (default: today)."),
    OpenApiParameter("clinic", int, many=True, description="Clinic ids: repeat, or separate with commas."),
    OpenApiParameter("department", int, description="Department id."),
    OpenApiParameter("doctor", int, description="Doctor id (doctors: only their own)."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the days as a CSV file."),
]


ERRORS = error_responses(
    400,
    401,
    403,
    404,
    descriptions={
        400: "Invalid parameter; `fields` names it.",
        403: "Patients have no statistics.",
        404: "A clinic, department or doctor outside your scope.",
    },
)


def parse_query(request: Request) -> tuple[selectors.StatsScope, object, object]:
    """The scope and range a request asks for (validation errors: 400; foreign ids: 404)."""
    query = StatsQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    scope = selectors.resolve_scope(
        signed_in_user(request),
        clinic_ids=data.get("clinic"),
        department_id=data.get("department"),
        doctor_id=data.get("doctor"),
    )
    date_from, date_to = selectors.validate_range(data.get("date_from"), data.get("date_to"))
    return scope, date_from, date_to


def _envelope(scope: selectors.StatsScope, date_from, date_to, days: list[dict]) -> dict:
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "clinics": scope.clinic_ids,
        "department": scope.department_id,
        "doctor": scope.doctor_id,
        "days": days,
    }


class StatisticsView(APIView):
    permission_classes = [IsClinician]
    renderer_classes = [JSONRenderer, CSVRenderer]
    columns: list[str] = []
    csv_name = "statistics"

    def rows(self, scope, date_from, date_to) -> list[dict]:
        raise NotImplementedError

    @replica_view  # reports read many rows and write none: the replica's work
    def get(self, request: Request) -> Response:
        scope, date_from, date_to = parse_query(request)
        days = self.rows(scope, date_from, date_to)
        # Rows are plain dicts already shaped like the schema: serializing a thousand of them through
        # DRF fields would cost more than reading them from the cache.
        body = _envelope(scope, date_from, date_to, [{k: row[k] for k in self.columns} for row in days])
        return Response(self.extend(body, days))

    def extend(self, body: dict, days: list[dict]) -> dict:
        return body


class DailyStatisticsView(StatisticsView):
    """Appointments by status, new and returning patients, no-show and cancellation rates, waiting time
    (average and 90th percentile), consultation time and utilization, per clinic-local day."""

    columns = DAILY_COLUMNS
    csv_name = "daily-statistics"

    def rows(self, scope, date_from, date_to):
        return selectors.daily_statistics(scope, date_from, date_to)

    def extend(self, body, days):
        summary = selectors.summarize(days)
        body["summary"] = {k: summary[k] for k in DAILY_COLUMNS}
        return body

    @extend_schema(
        summary="Daily appointment statistics",
        parameters=FILTERS,
        responses={(200, "application/json"): DailyStatisticsSerializer, (200, "text/csv"): str, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class News2DailyView(StatisticsView):
    """Consultations by NEWS2 clinical-risk band, per day the vitals were recorded."""

    columns = NEWS2_COLUMNS
    csv_name = "news2-daily"

    def rows(self, scope, date_from, date_to):
        return selectors.news2_daily(scope, date_from, date_to)

    @extend_schema(
        summary="NEWS2 bands seen per day",
        parameters=FILTERS,
        responses={(200, "application/json"): News2DailySerializer, (200, "text/csv"): str, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class CareNotesDailyView(StatisticsView):
    """Care notes per category per day (clinic local). The department filter narrows to its clinic; with
    a doctor filter, the notes that doctor wrote."""

    columns = CARE_NOTE_COLUMNS
    csv_name = "care-notes-daily"

    def rows(self, scope, date_from, date_to):
        return selectors.care_notes_daily(scope, date_from, date_to)

    @extend_schema(
        summary="Care notes per category per day",
        parameters=FILTERS,
        responses={(200, "application/json"): CareNotesDailySerializer, (200, "text/csv"): str, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
