"""Slots (read-only) and appointments (read, book, cancel, reschedule) under /api/v1/.

Who may call: every signed-in user reads what their scope shows (scheduling.selectors). Booking,
cancelling and rescheduling: admins and staff at their clinics, patients for themselves, not doctors.
Writes accept an Idempotency-Key header (opd.core.idempotency).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import get_authorization_header
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.authentication import CACHED_TOKEN_ATTRIBUTE, TokenAuthentication
from opd.core.api.permissions import has_role
from opd.core.api.schema import error_responses
from opd.core.api.throttling import SCOPED_THROTTLES
from opd.core.db_router import replica_view
from opd.core.idempotency import HEADER, AnswerAfterCommit, idempotent
from opd.core.models import Department, Role
from opd.core.tenancy import signed_in_user
from opd.core.tokens import digest
from opd.core.versioned_cache import Chained, Found, in_application_transaction

from .. import listing_cache
from ..filters import AppointmentFilter, SlotFilter
from ..models import Appointment, BookingChannel, Slot
from ..selectors import appointments_for, slots_for
from ..services import (
    appointment_book,
    appointment_book_first_available,
    appointment_cancel,
    appointment_reschedule,
)
from .serializers import (
    SLOT_LISTING_VALUES,
    AppointmentBookSerializer,
    AppointmentCancelSerializer,
    AppointmentRescheduleSerializer,
    AppointmentSerializer,
    SlotSerializer,
    slot_listing_row,
)


class MayChangeAppointments(BasePermission):
    """Reading: anyone signed in (scoped). Booking, cancelling, rescheduling: not doctors."""

    message = "Doctors have read-only access to appointments; ask reception to book or change them."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return has_role(request.user, Role.ADMIN, Role.STAFF, Role.PATIENT)


IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Up to 255 visible ASCII characters (a UUID). A retry with the same key and body gets the "
    "first answer again (header Idempotent-Replayed: true) without a second booking; the same key with "
    "another body answers 422.",
)


WRITE_MEANINGS = {
    403: "Not allowed; code `email_unverified`: a patient booking themselves has not confirmed their "
    "e-mail address yet.",
    404: "Unknown, or not visible to this user (also for ids in the body, named in `fields`).",
    409: "Conflict: the slot is full, the patient has an overlapping appointment, or the state forbids it; "
    "code `booking_cap`: a patient booking themselves already holds the most future appointments allowed.",
}


@extend_schema_view(
    list=extend_schema(summary="List slots", responses={200: SlotSerializer, **error_responses(400, 401)}),
    retrieve=extend_schema(
        summary="Show a slot", responses={200: SlotSerializer, **error_responses(401, 404)}
    ),
)
class SlotViewSet(viewsets.ReadOnlyModelViewSet):
    """Bookable slots; patients see only open, future ones of their organization's active clinics."""

    queryset = Slot.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = SlotSerializer
    filterset_class = SlotFilter

    def get_queryset(self) -> QuerySet[Slot]:
        if getattr(self, "swagger_fake_view", False):
            return Slot.objects.none()
        return slots_for(signed_in_user(self.request)).select_related("doctor__user", "department", "clinic")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]  # the cached body is bytes already
        """The listing patients search most: rows read as values in one joined query and shaped by
        slot_listing_row (SlotSerializer's output without model instances); the schema stays
        SlotSerializer's. A patient's first page comes from scheduling.listing_cache while the slots and
        catalog it shows are unchanged (its module says why that is never stale after a commit)."""
        cached = self._cached(request)
        if cached is not None and cached[1] is not None:
            return HttpResponse(cached[1], content_type="application/json")
        if cached is None:
            # Not cached: the busiest uncached read may go to a replica (a user who just wrote reads the
            # primary). A cached answer is always built from the primary: one read on a lagging replica
            # would be stored under the versions bumped after the commit it has not seen yet.
            return self._list_on_replica(request)
        return self._list(request, cached)

    def perform_authentication(self, request: Request) -> None:
        # A listing that may be a patient's cached one reads the token check's entry and its own in one
        # round trip, before the check (which then uses what was read): see _read_with_token.
        self._listing_plan = self._plan(request) if self.action == "list" else None
        self._listing_read: Chained | None = None
        if self._listing_plan is not None and self._listing_plan.keys is not None:
            self._listing_read = _read_with_token(request, self._listing_plan.keys, self._listing_plan.parts)
        super().perform_authentication(request)

    @replica_view
    def _list_on_replica(self, request: Request) -> Response:
        response = self._list(request, None)
        assert isinstance(response, Response)  # noqa: S101 (uncached: always DRF's)
        return response

    def _list(self, request: Request, cached: tuple[str, bytes | None] | None) -> HttpResponseBase:
        # The versions (in the key) were read before this query: see listing_cache.
        rows = self.filter_queryset(self.get_queryset()).values(*SLOT_LISTING_VALUES)
        page = self.paginate_queryset(rows)
        shown = page if page is not None else list(rows)
        zones: dict[str, Any] = {}
        data = [slot_listing_row(row, zones) for row in shown]
        response = self.get_paginated_response(data) if page is not None else Response(data)
        if cached is None:
            return response
        body = JSONRenderer().render(response.data)
        earliest = min((row["start"] for row in shown), default=None)
        listing_cache.store(cached[0], body, earliest_start=earliest, now=timezone.now())
        return HttpResponse(body, content_type="application/json")

    def _cached(self, request: Request) -> tuple[str, bytes | None] | None:
        """A patient's first page: its cache key and the answer stored there (None: not stored yet);
        None when this listing is not cached (other users, later pages, transactions, bad input)."""
        user = signed_in_user(request)
        if user.is_superuser or user.role != Role.PATIENT or user.organization_id is None:
            return None
        plan = self._listing_plan  # read in perform_authentication, from the parameters alone
        if plan is None:
            return None
        if plan.keys is None:
            return _department_listing(plan.department, plan.parts, user.organization_id)
        read = self._listing_read
        if read is not None and read.owner == user.organization_id and read.second is not None:
            found: Found | None = read.second  # read with the token check, for this very organization
        else:
            found = listing_cache.lookup(plan.keys, plan.parts, user.organization_id)
        if found is None:
            return None
        if plan.catalog is not None and found.versions[0] != plan.catalog:
            # The catalog changed since the department's clinic was read: read it again next time.
            _DEPARTMENT_CLINICS.pop(plan.department, None)
            return None
        return found.entry, found.body

    def _plan(self, request: Request) -> _ListingPlan | None:
        """What a cached listing of this request would read, from its parameters alone (who asks is
        checked after): None when such a listing is not cached (later pages, other formats,
        transactions, bad input)."""
        renderer = getattr(request, "accepted_renderer", None)
        if getattr(renderer, "format", None) != "json" or in_application_transaction():
            return None
        params = request.query_params
        page_param = getattr(self.paginator, "page_query_param", None)
        if page_param is None or params.get(page_param, "1") != "1":
            return None
        try:
            doctor, department, clinic = (
                int(params[name]) if params.get(name) else None for name in ("doctor", "department", "clinic")
            )
            first, last = (
                dt.date.fromisoformat(params[name]) if params.get(name) else None
                for name in ("date_from", "date_to")
            )
        except ValueError:
            return None  # the filterset answers 400 naming the parameter
        parts = {"params": sorted(params.lists()), "base": request.build_absolute_uri("/")}
        catalog = listing_cache.CATALOG
        if doctor and first and last and 0 <= (last - first).days < listing_cache.MAX_DAYS:
            days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
            return _ListingPlan(
                [catalog, *(listing_cache.doctor_day_key(doctor, day) for day in days)], parts
            )
        if department:
            known = _DEPARTMENT_CLINICS.get(department)
            if known is None:
                return _ListingPlan(None, parts, department=department)
            keys = [catalog, listing_cache.clinic_key(known[1])]
            return _ListingPlan(keys, parts, catalog=known[0], department=department)
        if clinic:
            return _ListingPlan([catalog, listing_cache.clinic_key(clinic)], parts)
        return None


class _ListingPlan(NamedTuple):
    keys: list[str] | None  # the versions the answer depends on; None: a department's clinic is not known yet
    parts: dict[str, Any]  # the request, as the answer's name
    catalog: str | None = None  # a department's: the catalog version its clinic was read under
    department: int = 0


def _read_with_token(request: Request, keys: list[str], parts: dict[str, Any]) -> Chained | None:
    """The token check's cache entry and this listing's for the token's organization, in one round
    trip; the check's part is left on the request for the authenticator (who asks is not known yet: the
    listing's part is used only once the check says it is a patient of that organization)."""
    header = get_authorization_header(request).split()
    if len(header) != 2 or header[0].lower() != TokenAuthentication.keyword.lower().encode():
        return None
    try:
        token_digest = digest(header[1].decode())
    except UnicodeError:
        return None
    read = listing_cache.lookup_with_token(token_digest, keys, parts)
    if read is not None:
        setattr(request._request, CACHED_TOKEN_ATTRIBUTE, (token_digest, read.first.entry, read.first.body))
    return read


# Which clinic a department belongs to, with the catalog version it was read under (a department's
# move bumps the catalog): a department's listing follows its clinic's slot version.
_DEPARTMENT_CLINICS: dict[int, tuple[str, int]] = {}


def _department_listing(
    department_id: int, parts: dict[str, Any], organization_id: int
) -> tuple[str, bytes | None] | None:
    """A department's listing whose clinic is not known yet: read it (and the catalog's version) first."""
    probe = listing_cache.lookup([listing_cache.CATALOG], {}, 0)
    clinic_id = Department.objects.filter(pk=department_id).values_list("clinic_id", flat=True).first()
    if probe is None or clinic_id is None:
        return None
    if len(_DEPARTMENT_CLINICS) > 10_000:
        _DEPARTMENT_CLINICS.clear()
    known = _DEPARTMENT_CLINICS[department_id] = (probe.versions[0], clinic_id)
    found = listing_cache.lookup(
        [listing_cache.CATALOG, listing_cache.clinic_key(clinic_id)], parts, organization_id
    )
    if found is None or found.versions[0] != known[0]:
        # The catalog changed since the clinic was read: read it again next time, not cached now.
        _DEPARTMENT_CLINICS.pop(department_id, None)
        return None
    return found.entry, found.body


WRITE_ERRORS = (400, 401, 403, 404, 409, 422)


@extend_schema_view(
    list=extend_schema(
        summary="List appointments", responses={200: AppointmentSerializer, **error_responses(400, 401)}
    ),
    retrieve=extend_schema(
        summary="Show an appointment", responses={200: AppointmentSerializer, **error_responses(401, 404)}
    ),
)
class AppointmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Appointments the user may see: patients their own, clinic users those at their clinics."""

    queryset = Appointment.objects.none()
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    permission_classes = [MayChangeAppointments]
    # Booking is rate-limited per user (patients tighter) and per address; the other actions are not.
    throttle_classes = SCOPED_THROTTLES
    throttle_scope = "booking"
    throttle_actions = ("create",)

    def get_queryset(self) -> QuerySet[Appointment]:
        if getattr(self, "swagger_fake_view", False):
            return Appointment.objects.none()
        return appointments_for(signed_in_user(self.request)).select_related(
            "patient", "doctor__user", "department", "clinic"
        )

    def _input(self, serializer_class, request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _answer(self, appointment: Appointment, status_code: int = status.HTTP_200_OK) -> Response:
        if not all(
            Appointment._meta.get_field(name).is_cached(appointment)  # type: ignore[union-attr]  # each is a ForeignKey
            for name in ("patient", "clinic", "department", "doctor")
        ):
            # Read back through the scoped queryset: the representation needs its related rows in one query.
            appointment = self.get_queryset().get(pk=appointment.pk)
            return Response(self.get_serializer(appointment).data, status=status_code)
        # Serialized from the rows at hand once the booking has committed (its locks released).
        return AnswerAfterCommit(lambda: self.get_serializer(appointment).data, status=status_code)

    @extend_schema(
        summary="Book an appointment",
        description="With `slot`: book that slot. With `department`: book the first available slot there "
        "(optionally between `after` and `before`). Patients may leave out `patient` to book for themselves.",
        request=AppointmentBookSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: AppointmentSerializer, **error_responses(*WRITE_ERRORS, descriptions=WRITE_MEANINGS)},
    )
    @idempotent(scope="appointment.book")
    def create(self, request: Request) -> Response:
        data = self._input(AppointmentBookSerializer, request)
        common = {
            "actor": request.user,
            "patient": data["patient"],
            "reason": data["reason"],
            "channel": BookingChannel.API,
        }
        if "slot" in data:
            appointment = appointment_book(slot=data["slot"], **common)
        else:
            appointment = appointment_book_first_available(
                department_id=data["department"].pk,
                after=data.get("after"),
                before=data.get("before"),
                **{**common, "patient": data["patient"].get("patient")},
            )
        return self._answer(appointment, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel an appointment",
        description="Frees the seat. Patients may cancel their own up to the clinic's cut-off.",
        request=AppointmentCancelSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: AppointmentSerializer, **error_responses(*WRITE_ERRORS, descriptions=WRITE_MEANINGS)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(scope="appointment.cancel")
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        appointment = self.get_object()
        data = self._input(AppointmentCancelSerializer, request)
        appointment = appointment_cancel(
            actor=signed_in_user(request),
            appointment=appointment,
            reason=data["reason"],
            channel=BookingChannel.API,
        )
        return self._answer(appointment)

    @extend_schema(
        summary="Move an appointment to another slot",
        description="The new seat is taken before the old one is freed. Patients may reschedule their own "
        "up to the clinic's cut-off.",
        request=AppointmentRescheduleSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: AppointmentSerializer, **error_responses(*WRITE_ERRORS, descriptions=WRITE_MEANINGS)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(scope="appointment.reschedule")
    def reschedule(self, request: Request, pk: str | None = None) -> Response:
        appointment = self.get_object()
        data = self._input(AppointmentRescheduleSerializer, request)
        appointment = appointment_reschedule(
            actor=signed_in_user(request),
            appointment=appointment,
            slot=data["slot"],
            channel=BookingChannel.API,
        )
        return self._answer(appointment)
