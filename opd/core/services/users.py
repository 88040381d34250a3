"""People who sign in and the clinics they work at.

Every password set here goes through Django's validators (AUTH_PASSWORD_VALIDATORS: at least 12
characters, not common, not numeric, not like the person's names): the forms check too, to show the
message beside the field, but this is the rule's one door, so no caller (the admin, the portal, a command,
the seeding) can set a weak one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..audit import audit
from ..errors import Conflict, PermissionDenied, ValidationFailed
from ..models import Clinic, Membership, Organization, Role, User
from . import validate_model
from .organizations import check_tenant

USER_FIELDS = ("username", "first_name", "last_name", "email", "is_staff")
# Only a superuser grants these; the project itself uses roles, not Django's groups and permissions.
SUPERUSER_FIELDS = ("is_superuser", "groups", "user_permissions")
PORTAL_ONLY = "Doctors and patients work in the portal, not in the admin: leave this unticked."
NEEDS_ORGANIZATION = "Everyone but a superuser belongs to an organization."
FOREIGN_CLINIC = "This clinic belongs to another organization than the user."


def _check_user(user: User) -> None:
    """The rules of a user the model cannot hold on its own."""
    if user.is_superuser:
        return
    if user.is_staff and user.role in (Role.DOCTOR, Role.PATIENT):
        raise ValidationFailed(PORTAL_ONLY, fields={"is_staff": PORTAL_ONLY})
    if user.organization_id is None:
        raise ValidationFailed(NEEDS_ORGANIZATION, fields={"organization": NEEDS_ORGANIZATION})


def _check_may_grant(actor: User | None, names: list[str]) -> None:
    granted = [name for name in names if name in SUPERUSER_FIELDS]
    if granted and actor is not None and not actor.is_superuser:
        raise PermissionDenied(
            "Only a superuser changes superuser status, groups or permissions.",
            fields=dict.fromkeys(granted, "Only a superuser changes this."),
        )


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"password": exc.messages}) from exc


def _save(user: User, **kwargs: Any) -> None:
    """Save, turning a lost race for the username into the same answer as a taken one."""
    try:
        with transaction.atomic():
            user.save(**kwargs)
    except IntegrityError as exc:
        if User.objects.filter(username=user.username).exclude(pk=user.pk).exists():
            message = "A user with that username already exists."
            raise ValidationFailed(message, fields={"username": message}) from exc
        raise Conflict("The change clashed with another one; please try again.") from exc


def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    role: str,
    organization: Organization | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """A new sign-in. `password` None leaves it unusable (the person sets one through a reset link).

    `actor` None is the person signing themselves up, or the system (seeding)."""
    check_tenant(actor, organization.pk if organization else None, "organization")
    if is_superuser:
        _check_may_grant(actor, ["is_superuser"])
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=role,
        organization=organization,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    _check_user(user)
    validate_model(user)
    if password is not None:
        _check_password(password, user)
    with transaction.atomic():
        _save(user)
        audit(
            actor=actor,
            action="user.created",
            obj=user,
            organization_id=user.organization_id,
            role=user.role,
            is_staff=user.is_staff,
        )
    return user


def user_update(*, actor: User | None, user: User, **fields: Any) -> User:
    """Change a person's name, sign-in name, email or admin access (and, for a superuser, superuser
    status, groups and permissions). The role and active flag have their own services."""
    allowed = (*USER_FIELDS, *SUPERUSER_FIELDS)
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
    check_tenant(actor, user.organization_id, "user")
    current = User.objects.get(pk=user.pk)
    m2m = {name: fields.pop(name) for name in ("groups", "user_permissions") if name in fields}
    changed = sorted(name for name, value in fields.items() if getattr(current, name) != value)
    m2m_changed = sorted(
        name for name, value in m2m.items() if set(getattr(current, name).all()) != set(value)
    )
    _check_may_grant(actor, [*changed, *m2m_changed])
    if not changed and not m2m_changed:
        return current
    for name in changed:
        setattr(current, name, fields[name])
    _check_user(current)
    validate_model(current, exclude=["password"])
    with transaction.atomic():
        if changed:
            _save(current, update_fields=changed)
        for name in m2m_changed:
            getattr(current, name).set(m2m[name])
        audit(
            actor=actor,
            action="user.changed",
            obj=current,
            organization_id=current.organization_id,
            fields=changed + m2m_changed,
        )
    return current


def user_change_role(*, actor: User | None, user: User, role: str, is_staff: bool | None = None) -> User:
    """Give a person another role. Admin access goes with the role: pass `is_staff` to change both at
    once (a receptionist who becomes a doctor leaves the admin). Audited with the old and new role."""
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", fields={"role": "Choose one of the roles."})
    check_tenant(actor, user.organization_id, "user")
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        previous = current.role
        changed = []
        if current.role != role:
            current.role = role
            changed.append("role")
        if is_staff is not None and current.is_staff != is_staff:
            current.is_staff = is_staff
            changed.append("is_staff")
        if not changed:
            return current
        _check_user(current)
        current.save(update_fields=changed)
        audit(
            actor=actor,
            action="user.role_changed",
            obj=current,
            organization_id=current.organization_id,
            old_role=previous,
            new_role=current.role,
            fields=sorted(changed),
        )
    return current


def _set_active(actor: User | None, user: User, is_active: bool) -> User:
    check_tenant(actor, user.organization_id, "user")
    if not is_active and actor is not None and actor.pk == user.pk:
        raise ValidationFailed(
            "You cannot deactivate your own account.", fields={"is_active": "Not your own account."}
        )
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        if current.is_active == is_active:
            return current
        current.is_active = is_active
        current.save(update_fields=["is_active"])
        action = "user.reactivated" if is_active else "user.deactivated"
        audit(actor=actor, action=action, obj=current, organization_id=current.organization_id)
    return current


def user_deactivate(*, actor: User | None, user: User) -> User:
    """Close a person's access: they can no longer sign in, and every request checks is_active.
    Nothing is deleted: the records they wrote keep their author."""
    return _set_active(actor, user, False)


def user_reactivate(*, actor: User | None, user: User) -> User:
    return _set_active(actor, user, True)


def user_set_password(*, actor: User | None, user: User, password: str | None) -> User:
    """Set a new password (None: make it unusable). The audit event says that it changed, never what."""
    check_tenant(actor, user.organization_id, "user")
    if password is not None:
        _check_password(password, user)
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        if password is None:
            current.set_unusable_password()
        else:
            current.set_password(password)
        current.save(update_fields=["password"])
        audit(
            actor=actor,
            action="user.password_changed",
            obj=current,
            organization_id=current.organization_id,
            usable=password is not None,
        )
    return current


def membership_add(*, actor: User | None, user: User, clinic: Clinic) -> Membership:
    """Let a person work at a clinic of their own organization."""
    check_tenant(actor, user.organization_id, "user")
    check_tenant(actor, clinic.organization_id, "clinic")
    if clinic.organization_id != user.organization_id:
        raise ValidationFailed(FOREIGN_CLINIC, fields={"clinic": FOREIGN_CLINIC})
    already = "This person already works at this clinic."
    if Membership.objects.filter(user=user, clinic=clinic).exists():
        raise ValidationFailed(already, fields={"clinic": already})
    membership = Membership(user=user, clinic=clinic)
    validate_model(membership)
    with transaction.atomic():
        try:
            with transaction.atomic():
                membership.save()
        except IntegrityError as exc:  # the same membership added twice at once
            raise ValidationFailed(already, fields={"clinic": already}) from exc
        audit(
            actor=actor,
            action="membership.added",
            obj=membership,
            organization_id=clinic.organization_id,
            user_id=user.pk,
            clinic_id=clinic.pk,
        )
    return membership


def membership_remove(*, actor: User | None, membership: Membership) -> None:
    """A person stops working at a clinic: from the next request on they see nothing of it."""
    clinic = Clinic.objects.get(pk=membership.clinic_id)
    check_tenant(actor, clinic.organization_id, "clinic")
    with transaction.atomic():
        audit(
            actor=actor,
            action="membership.removed",
            obj=membership,
            organization_id=clinic.organization_id,
            user_id=membership.user_id,
            clinic_id=membership.clinic_id,
        )
        Membership.objects.filter(pk=membership.pk).delete()
