"""The token endpoint and the read-only organization tree (organizations, clinics, departments)."""

from __future__ import annotations

import django_filters
from rest_framework import viewsets
from rest_framework.authtoken.views import ObtainAuthToken

from opd.core.filters import IdFilter
from opd.core.models import Clinic, Department, Organization
from opd.core.tenancy import clinics_for, departments_for, organizations_for

from .serializers import ClinicSerializer, DepartmentSerializer, OrganizationSerializer


class ObtainTokenView(ObtainAuthToken):
    """POST username and password; answers {"token": ...} for `Authorization: Token ...`."""


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
