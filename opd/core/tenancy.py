"""What a user may see. Selectors call these; views never query a model unscoped.

The tenant is the organization: nothing crosses it. Inside it, clinic-level rows (appointments, slots,
schedules) are visible to admins everywhere and to staff and doctors at the clinics they are members of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from . import errors
from .models import Clinic, Department, Membership, Organization, Role, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.request import Request


def signed_in_user(request: HttpRequest | Request) -> User:
    """The user of a request that a login check has already let through, typed as our `User`.

    Pages behind `login_required` (or the portal's `patient_required`) and API views behind a permission
    class that needs a signed-in user call this instead of reading `request.user`, which the checker
    types `User | AnonymousUser`: it narrows once, at runtime too, rather than casting. An anonymous user
    here means a view lost its check, so it is refused (403 on a page and in the API) instead of going on
    as nobody.
    """
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return user


# Clinical standing ----------------------------------------------------------------------------------
#
# A doctor reads and writes clinical records only while their account is active and their clinical
# profile is approved (not pending, not suspended). The profile lives in scheduling, above this app, so
# scheduling registers the check from its AppConfig.ready() (as it registers its time-zone planner):
# opd.core knows only the shape of the check. With no check registered a doctor has no standing: the
# door fails closed. Everything that scopes a doctor's clinics goes through clinic_ids_for below, so a
# suspension takes effect on the very next request of every door that reads by clinic.

StandingCheck = Callable[[User], bool]
_standing_checks: list[StandingCheck] = []

NO_CLINICAL_STANDING = "no_clinical_standing"
NO_STANDING_MESSAGE = (
    "Your clinical access is not active: your doctor profile is pending approval or suspended, "
    "or your account was closed. Ask your organization's administrator."
)


def clinical_standing_register(check: StandingCheck) -> None:
    if check not in _standing_checks:
        _standing_checks.append(check)


def clinical_standing_unregister(check: StandingCheck) -> None:
    if check in _standing_checks:
        _standing_checks.remove(check)


def has_clinical_standing(user: User | AnonymousUser) -> bool:
    """Whether a doctor may work with clinical records now (superusers always). Other roles: False (their
    access does not come from a clinical profile). Cached on the user object, like clinic_ids_for: one
    request, one answer."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not isinstance(user, User) or user.role != Role.DOCTOR:
        return False
    cached: bool | None = getattr(user, "_opd_clinical_standing", None)
    if cached is not None:
        return cached
    standing = bool(_standing_checks) and all(check(user) for check in _standing_checks)
    user._opd_clinical_standing = standing  # type: ignore[attr-defined]  # a per-request cache on the instance
    return standing


def check_clinical_standing(user: User | AnonymousUser) -> None:
    """Refuse (403, code no_clinical_standing) a doctor whose standing lapsed; others pass untouched."""
    if (
        getattr(user, "role", None) == Role.DOCTOR
        and not user.is_superuser
        and not has_clinical_standing(user)
    ):
        raise errors.PermissionDenied(NO_STANDING_MESSAGE, code=NO_CLINICAL_STANDING)


def require_clinical_standing(user: User | AnonymousUser) -> None:
    """check_clinical_standing for pages: a 403 page with the reason."""
    try:
        check_clinical_standing(user)
    except errors.PermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc


def clinic_ids_for(user: User) -> list[int] | None:
    """Clinic ids the user works at; None means every clinic (superuser). Cached on the user object.

    A doctor without clinical standing works nowhere: every clinic-scoped read of theirs is empty."""
    if user.is_superuser:
        return None
    cached = getattr(user, "_opd_clinic_ids", None)
    if cached is not None:
        return cached
    if user.role == Role.ADMIN:
        ids = list(Clinic.objects.filter(organization_id=user.organization_id).values_list("id", flat=True))  # type: ignore[misc]  # no organization: matches no row
    elif user.role == Role.DOCTOR and not has_clinical_standing(user):
        ids = []
    elif user.role in (Role.STAFF, Role.DOCTOR):
        ids = list(
            Membership.objects.filter(user=user, clinic__organization_id=user.organization_id).values_list(  # type: ignore[misc]  # no organization: matches no row
                "clinic_id", flat=True
            )
        )
    else:
        ids = []
    user._opd_clinic_ids = ids  # type: ignore[attr-defined]  # a per-request cache on the instance
    return ids


def nurse_clinic_ids_for(user: User) -> list[int] | None:
    """Clinics where the user works as a nurse (Membership.is_nurse): a staff member's flagged memberships;
    None means every clinic (superuser); nobody else is a nurse. Not cached: it is read once per triage
    request, and a capability taken away counts from the next one."""
    if user.is_superuser:
        return None
    if not user.is_active or user.role != Role.STAFF:
        return []
    return list(
        Membership.objects.filter(
            user=user,
            is_nurse=True,
            clinic__organization_id=user.organization_id,  # type: ignore[misc]  # no organization: no row
        ).values_list("clinic_id", flat=True)
    )


def organizations_for(user: User) -> QuerySet[Organization]:
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(pk=user.organization_id)  # type: ignore[misc]  # no organization: matches no row


def clinics_for(user: User) -> QuerySet[Clinic]:
    """Clinics a user may read: patients see their organization's active clinics, to book at them."""
    qs = Clinic.objects.select_related("organization")
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        return qs.filter(organization_id=user.organization_id, is_active=True)  # type: ignore[misc]  # no organization: matches no row
    return qs.filter(pk__in=clinic_ids_for(user))  # type: ignore[misc]  # None only for superusers, who return earlier


def public_clinics() -> QuerySet[Clinic]:
    """What visitors who are not signed in may see: nothing, unless the deployment publishes the clinics
    an administrator listed (OPD_PUBLIC_CLINICS = "listed", Clinic.listed_publicly). The default
    publishes nothing, so one organization's visitors never learn of another's clinics."""
    if settings.OPD_PUBLIC_CLINICS != "listed":
        return Clinic.objects.none()
    return Clinic.objects.select_related("organization").filter(is_active=True, listed_publicly=True)


def departments_for(user: User) -> QuerySet[Department]:
    qs = Department.objects.select_related("clinic")
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        return qs.filter(clinic__organization_id=user.organization_id, clinic__is_active=True, is_active=True)  # type: ignore[misc]  # no organization: matches no row
    return qs.filter(clinic_id__in=clinic_ids_for(user))  # type: ignore[misc]  # None only for superusers, who return earlier


def restrict_to_clinics(qs: QuerySet, user: User, field: str = "clinic", *, lazy: bool = False) -> QuerySet:
    """`qs` limited to the clinics the user works at. `lazy=True`: as a subquery for staff and admins
    (unless the ids are already at hand), so a scope folded into another statement costs no round trip
    of its own; a doctor's standing is still checked at once."""
    if lazy and not user.is_superuser and getattr(user, "_opd_clinic_ids", None) is None:
        if user.role == Role.ADMIN:
            clinics = Clinic.objects.filter(organization_id=user.organization_id).values("id")  # type: ignore[misc]  # no organization: matches no row
            return qs.filter(**{f"{field}__in": clinics})
        if user.role == Role.STAFF:
            memberships = Membership.objects.filter(
                user=user,
                clinic__organization_id=user.organization_id,  # type: ignore[misc]  # no organization: matches no row
            ).values("clinic_id")
            return qs.filter(**{f"{field}__in": memberships})
    ids = clinic_ids_for(user)
    return qs if ids is None else qs.filter(**{f"{field}__in": ids})


@dataclass(frozen=True)
class ScopedId:
    """An id from a request, to be looked up only among `scope`'s rows by the service that reads it, in its
    own (locking) read, so the door does not read the row first. `pk=None` stands for the scope's one row
    (a patient's own record)."""

    pk: int | None
    scope: QuerySet[Any]

    def get(self, noun: str) -> Any:
        """The row, for a service that takes an instance: 404 naming `noun` when it is not in the scope."""
        rows = self.scope if self.pk is None else self.scope.filter(pk=self.pk)
        found = rows.first()
        if found is None:
            message = (
                f"No {noun} record is linked to this account." if self.pk is None else f"Unknown {noun}."
            )
            raise errors.NotFound(message if self.pk is None else f"No such {noun}.", fields={noun: message})
        return found
