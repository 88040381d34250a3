"""Role permissions for API views. Tenancy is not here: it is the scoped queryset of each view."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from opd.core.models import Role
from opd.core.tenancy import check_clinical_standing


def has_role(user, *roles: str) -> bool:
    """Whether the user holds one of the roles. A door open to doctors refuses a doctor whose clinical
    standing lapsed (suspended, pending approval) with 403 no_clinical_standing, on every request."""
    if not (user and user.is_authenticated and (user.is_superuser or user.role in roles)):
        return False
    if Role.DOCTOR in roles:
        check_clinical_standing(user)
    return True


class InClinicalStanding(BasePermission):
    """Everyone passes but a doctor whose clinical standing lapsed: 403 no_clinical_standing."""

    def has_permission(self, request, view) -> bool:
        check_clinical_standing(request.user)
        return True


class IsAdmin(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.ADMIN)


class IsClinicStaff(BasePermission):
    """Administrators and staff (reception, nurses)."""

    message = "Only clinic staff may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_clinic_staff)


class IsClinician(BasePermission):
    """Administrators, staff and doctors: everyone who works at a clinic."""

    message = "Only clinic staff and doctors may do this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.ADMIN, Role.STAFF, Role.DOCTOR)
