"""Organizations, clinics and departments: the tenant and the places care happens.

A clinic's time zone and the apps above: slots are planned in clinic local time by scheduling, which
sits above opd.core and cannot be imported from here. Moving a clinic to another zone must re-plan its
future slots, or be refused while booked appointments would move with it, and both must happen in the
transaction that changes the zone: a refusal after commit would be too late, and a re-plan that fails
must leave the old zone in place. That rules out an event delivered on commit. Instead, an app that
plans things in clinic local time registers a planner here (`time_zone_planner_register`, from its
AppConfig.ready()); `clinic_update` calls each planner inside its transaction, after the new zone is
written and with the clinic row locked. A planner re-plans, or raises ValidationFailed naming the field
`time_zone` and the whole change rolls back. opd.core knows only the shape of a planner, never who
plans (the same inversion as events, but synchronous and transactional).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.db import transaction

from ..audit import audit, changes
from ..errors import NotFound, PermissionDenied, ValidationFailed
from ..models import Clinic, Department, Organization, User
from ..phones import region_for_time_zone
from . import validate_model

# access_log_shows_names: whether patients see staff names on "who opened my record" (Organization).
ORGANIZATION_FIELDS = ("name", "slug", "require_second_factor", "access_log_shows_names")
CLINIC_FIELDS = (
    "name",
    "code",
    "time_zone",
    "address",
    "phone",
    "phone_region",
    "email",
    "cancellation_cutoff_minutes",
    "checkin_opens_minutes",
    "is_active",
    "listed_publicly",
)
DEPARTMENT_FIELDS = ("name", "code", "is_active")


class TimeZonePlanner(Protocol):
    def __call__(self, *, clinic: Clinic, previous_time_zone: str) -> None: ...


_time_zone_planners: list[TimeZonePlanner] = []


def time_zone_planner_register(planner: TimeZonePlanner) -> None:
    """Have `planner(clinic=..., previous_time_zone=...)` called inside every clinic time-zone change."""
    if planner not in _time_zone_planners:
        _time_zone_planners.append(planner)


def time_zone_planner_unregister(planner: TimeZonePlanner) -> None:
    if planner in _time_zone_planners:
        _time_zone_planners.remove(planner)


def check_tenant(actor: User | None, organization_id: int | None, noun: str) -> None:
    """Another organization's row is not found, whatever its id: the answer for a row that never existed.
    `actor` None is the system (seeding, sign-up) acting on its own behalf."""
    if actor is None or actor.is_superuser:
        return
    if organization_id is None or actor.organization_id != organization_id:
        raise NotFound(f"No such {noun}.")


def _only(fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))


def _values(instance: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """What `instance` holds now for `fields`: the "before" of the audit event's changes."""
    return {name: getattr(instance, name) for name in fields}


def _apply(instance: Any, fields: dict[str, Any]) -> list[str]:
    """Set the fields that differ on `instance`; return their names, sorted."""
    changed = sorted(name for name, value in fields.items() if getattr(instance, name) != value)
    for name in changed:
        setattr(instance, name, fields[name])
    return changed


def organization_create(*, actor: User | None, name: str, slug: str) -> Organization:
    """A new tenant. Only a superuser (or the system) creates one; the doors grant nobody else."""
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Only a superuser creates an organization.")
    organization = Organization(name=name, slug=slug)
    validate_model(organization)
    with transaction.atomic():
        organization.save()
        audit(actor=actor, action="organization.created", obj=organization, organization_id=organization.pk)
    return organization


def organization_update(*, actor: User | None, organization: Organization, **fields: Any) -> Organization:
    """Rename, or set the second-factor requirement or the access log's policy. The slug identifies the
    organization outside the admin: only a superuser changes it."""
    _only(fields, ORGANIZATION_FIELDS)
    check_tenant(actor, organization.pk, "organization")
    current = Organization.objects.get(pk=organization.pk)
    before = _values(current, fields)
    changed = _apply(current, fields)
    if "slug" in changed and actor is not None and not actor.is_superuser:
        raise ValidationFailed(
            "Only a superuser changes an organization's slug.",
            fields={"slug": "Only a superuser changes it."},
        )
    if not changed:
        return current
    validate_model(current)
    with transaction.atomic():
        current.save(update_fields=changed)
        audit(
            actor=actor,
            action="organization.changed",
            obj=current,
            organization_id=current.pk,
            fields=changed,
            changes=changes(before, current, changed),
        )
    return current


def _upper_region(fields: dict[str, Any]) -> None:
    if isinstance(fields.get("phone_region"), str):
        fields["phone_region"] = fields["phone_region"].strip().upper()


def clinic_create(*, actor: User | None, organization: Organization, **fields: Any) -> Clinic:
    _only(fields, CLINIC_FIELDS)
    check_tenant(actor, organization.pk, "organization")
    _upper_region(fields)
    clinic = Clinic(organization=organization, **fields)
    if not clinic.phone_region:
        # Written down rather than left to follow the time zone: the desk sees which country a typed
        # number is read in, and a later move of zone does not silently change it.
        clinic.phone_region = region_for_time_zone(clinic.time_zone)
    validate_model(clinic)
    with transaction.atomic():
        clinic.save()
        audit(actor=actor, action="clinic.created", obj=clinic, organization_id=organization.pk)
    return clinic


def clinic_update(*, actor: User | None, clinic: Clinic, **fields: Any) -> Clinic:
    """Change a clinic's details. The organization never changes (slots and appointments carry it).

    A new time zone re-plans what is planned in clinic local time, through the registered planners
    (see the module docstring), in this transaction and with the clinic row locked so two changes of
    one clinic take turns; a planner may refuse, and then nothing changes.
    """
    _only(fields, CLINIC_FIELDS)
    check_tenant(actor, clinic.organization_id, "clinic")
    _upper_region(fields)
    with transaction.atomic():
        current = Clinic.objects.select_for_update().get(pk=clinic.pk)
        previous_time_zone = current.time_zone
        before = _values(current, fields)
        changed = _apply(current, fields)
        if not changed:
            return current
        validate_model(current)
        current.save(update_fields=changed)
        data: dict[str, Any] = {"fields": changed, "changes": changes(before, current, changed)}
        if "time_zone" in changed:
            data["time_zone"] = {"from": previous_time_zone, "to": current.time_zone}
            for planner in list(_time_zone_planners):
                planner(clinic=current, previous_time_zone=previous_time_zone)
        audit(
            actor=actor, action="clinic.changed", obj=current, organization_id=current.organization_id, **data
        )
    return current


def department_create(*, actor: User | None, clinic: Clinic, **fields: Any) -> Department:
    _only(fields, DEPARTMENT_FIELDS)
    check_tenant(actor, clinic.organization_id, "clinic")
    department = Department(clinic=clinic, **fields)
    validate_model(department)
    with transaction.atomic():
        department.save()
        audit(
            actor=actor, action="department.created", obj=department, organization_id=clinic.organization_id
        )
    return department


def department_update(*, actor: User | None, department: Department, **fields: Any) -> Department:
    """Rename, recode or close a department. It never moves to another clinic: slots hang off it."""
    _only(fields, DEPARTMENT_FIELDS)
    current = Department.objects.select_related("clinic").get(pk=department.pk)
    check_tenant(actor, current.clinic.organization_id, "department")
    before = _values(current, fields)
    changed = _apply(current, fields)
    if not changed:
        return current
    validate_model(current)
    with transaction.atomic():
        current.save(update_fields=changed)
        audit(
            actor=actor,
            action="department.changed",
            obj=current,
            organization_id=current.clinic.organization_id,
            fields=changed,
            changes=changes(before, current, changed),
        )
    return current
