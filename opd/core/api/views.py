"""The token endpoint, the read-only organization tree (organizations, clinics, departments) and the schema."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import django_filters
from django.conf import settings
from drf_spectacular.views import SpectacularAPIView
from rest_framework import viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.filters import IdFilter
from opd.core.models import Clinic, Department, Organization
from opd.core.tenancy import clinics_for, departments_for, organizations_for

from .serializers import ClinicSerializer, DepartmentSerializer, OrganizationSerializer
from .signin import SignInProtectionMixin


class ObtainTokenView(SignInProtectionMixin, ObtainAuthToken):
    """POST username and password; answers {"token": ...} for `Authorization: Token ...`.

    Throttled per address and locked out per account and per address (django-axes): 429 either way."""


class OrganizationViewSet(viewsets.ReadOnlyModelViewSet):
    """Organizations the user belongs to (every one for a superuser). Any signed-in user."""

    queryset = Organization.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = OrganizationSerializer

    def get_queryset(self):
        return organizations_for(self.request.user)


class ClinicViewSet(viewsets.ReadOnlyModelViewSet):
    """Clinics the user works at (admins: the whole organization; patients: its active clinics)."""

    queryset = Clinic.objects.none()
    serializer_class = ClinicSerializer

    def get_queryset(self):
        return clinics_for(self.request.user)


class DepartmentFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")

    class Meta:
        model = Department
        fields = ["clinic"]


class DepartmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Departments of the clinics the user may see; ?clinic=<id> narrows to one clinic."""

    queryset = Department.objects.none()
    serializer_class = DepartmentSerializer
    filterset_class = DepartmentFilter

    def get_queryset(self):
        return departments_for(self.request.user)


class SchemaView(SpectacularAPIView):
    """/api/schema/: built once per process and served from memory.

    drf-spectacular builds the schema on request, loading its extensions lazily on the first build, and
    that first build is not thread-safe: two clients asking at once on a threaded or ASGI server got a
    500. The schema is public and names no server, so it is the same for every request of a deployment;
    a lock makes the first build the only one, keyed by URL configuration and API version (tests swap the
    URL configuration).
    """

    _lock = threading.Lock()
    _built: ClassVar[dict[tuple[str, str | None], dict[str, Any]]] = {}

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (str(self.urlconf or settings.ROOT_URLCONF), version)
        with self._lock:
            if key not in self._built:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                self._built[key] = generator.get_schema(request=request, public=self.serve_public)
        return Response(
            data=self._built[key],
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
