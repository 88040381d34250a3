"""People who sign in and the clinics they work at.

Every password set here goes through Django's validators (AUTH_PASSWORD_VALIDATORS: at least 12
characters, not common, not numeric, not like the person's names): the forms check too, to show the
message beside the field, but this is the rule's one door, so no caller (the admin, the portal, a command,
the seeding) can set a weak one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import events
from ..audit import audit, changes
from ..errors import Conflict, PermissionDenied, ValidationFailed
from ..models import Clinic, Membership, Organization, Role, User
from . import validate_model
from .organizations import check_tenant
from .tokens import tokens_revoke_all

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
    email_verified: bool = True,
) -> User:
    """A new sign-in. `password` None leaves it unusable (the person sets one through a reset link).

    `actor` None is the person signing themselves up, or the system (seeding). An account the clinic
    creates counts as verified (the clinic vouches for the address); self sign-up passes
    `email_verified=False` and the person proves the address with user_verify_email."""
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
        email_verified_at=timezone.now() if email_verified else None,
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
    before = {name: getattr(current, name) for name in changed}
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
            changes=changes(before, current, changed),
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
        previous, was_staff = current.role, current.is_staff
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
            changes=changes({"role": previous, "is_staff": was_staff}, current, changed),
        )
        if "role" in changed:
            events.publish(events.ACCESS_REVOKED, user_id=current.pk, reason="role_changed")
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
        if not is_active:
            tokens_revoke_all(actor=actor, user=current, reason="deactivated")
            events.publish(events.ACCESS_REVOKED, user_id=current.pk, reason="deactivated")
    return current


def user_deactivate(*, actor: User | None, user: User) -> User:
    """Close a person's access: they can no longer sign in, and every request checks is_active.
    Nothing is deleted: the records they wrote keep their author."""
    return _set_active(actor, user, False)


def user_reactivate(*, actor: User | None, user: User) -> User:
    return _set_active(actor, user, True)


def user_set_password(*, actor: User | None, user: User, password: str | None) -> User:
    """Set a new password (None: make it unusable). The audit event says that it changed, never what.
    Every API token of the person ends with the old password: one that leaked stops working."""
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
        tokens_revoke_all(actor=actor, user=current, reason="password_changed")
    return current


NURSES_ARE_STAFF = "Only staff members work as nurses (doctors record vitals already)."


def _check_nurse(user: User, is_nurse: bool) -> None:
    if is_nurse and user.role != Role.STAFF:
        raise ValidationFailed(NURSES_ARE_STAFF, fields={"is_nurse": NURSES_ARE_STAFF})


def membership_add(*, actor: User | None, user: User, clinic: Clinic, is_nurse: bool = False) -> Membership:
    """Let a person work at a clinic of their own organization (a staff member as a nurse with `is_nurse`)."""
    check_tenant(actor, user.organization_id, "user")
    check_tenant(actor, clinic.organization_id, "clinic")
    if clinic.organization_id != user.organization_id:
        raise ValidationFailed(FOREIGN_CLINIC, fields={"clinic": FOREIGN_CLINIC})
    _check_nurse(user, is_nurse)
    already = "This person already works at this clinic."
    if Membership.objects.filter(user=user, clinic=clinic).exists():
        raise ValidationFailed(already, fields={"clinic": already})
    membership = Membership(user=user, clinic=clinic, is_nurse=is_nurse)
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
            **({"is_nurse": True} if is_nurse else {}),
        )
    return membership


def membership_set_nurse(*, actor: User | None, membership: Membership, is_nurse: bool) -> Membership:
    """Grant or take away the nurse capability of a staff member at one clinic (audited). Taking it away
    counts at once: open triage pages and sockets re-check (ACCESS_REVOKED)."""
    clinic = Clinic.objects.get(pk=membership.clinic_id)
    check_tenant(actor, clinic.organization_id, "clinic")
    with transaction.atomic():
        current = Membership.objects.select_for_update().get(pk=membership.pk)
        if current.is_nurse == is_nurse:
            return current
        _check_nurse(User.objects.get(pk=current.user_id), is_nurse)
        current.is_nurse = is_nurse
        current.save(update_fields=["is_nurse"])
        audit(
            actor=actor,
            action="membership.nurse_granted" if is_nurse else "membership.nurse_revoked",
            obj=current,
            organization_id=clinic.organization_id,
            user_id=current.user_id,
            clinic_id=current.clinic_id,
        )
        if not is_nurse:
            events.publish(events.ACCESS_REVOKED, user_id=current.user_id, reason="nurse_revoked")
    return current


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
        events.publish(events.ACCESS_REVOKED, user_id=membership.user_id, reason="membership_removed")


# E-mail verification. The link carries the user's id and address, signed and time-stamped, so it
# stops working when it expires or when the address changes; nothing is stored for it.
EMAIL_VERIFICATION_SALT = "opd.core.email-verification"
VERIFICATION_EXPIRED = "This verification link has expired. Sign in and ask for a new one."
VERIFICATION_INVALID = "This verification link is not valid. Sign in and ask for a new one."


def email_verification_token(*, user: User) -> str:
    return signing.TimestampSigner(salt=EMAIL_VERIFICATION_SALT).sign_object(
        {"user": user.pk, "email": user.email.lower()}
    )


def user_verify_email(*, token: str) -> User:
    """Mark the address of the link's user as verified (audited). A link that is tampered with, older
    than OPD_EMAIL_VERIFICATION_MAX_AGE seconds, or for an address the user no longer has is refused.
    Verifying twice is harmless: the first time stands."""
    signer = signing.TimestampSigner(salt=EMAIL_VERIFICATION_SALT)
    try:
        payload = signer.unsign_object(token, max_age=settings.OPD_EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ValidationFailed(VERIFICATION_EXPIRED, code="verification_expired") from exc
    except signing.BadSignature as exc:
        raise ValidationFailed(VERIFICATION_INVALID, code="verification_invalid") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        raise ValidationFailed(VERIFICATION_INVALID, code="verification_invalid")
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=payload["user"], is_active=True).first()
        if user is None or user.email.lower() != payload.get("email"):
            raise ValidationFailed(VERIFICATION_INVALID, code="verification_invalid")
        if user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
            audit(
                actor=user,
                action="user.email_verified",
                obj=user,
                organization_id=user.organization_id,
                email=user.email,
            )
    return user


def user_signin_unlock(*, actor: User, user: User) -> int:
    """End a sign-in lockout of `user`'s username (django-axes' failures for it), for an administrator of
    their organization or a superuser. A lockout of an address stays for a superuser to lift. Audited;
    answers how many recorded failures were cleared."""
    from axes.utils import reset

    if not actor.is_superuser and (actor.role != Role.ADMIN or actor.organization_id != user.organization_id):
        raise PermissionDenied("Only an administrator of the person's organization can unlock their sign-in.")
    with transaction.atomic():
        cleared: int = reset(username=user.get_username())
        audit(
            actor=actor,
            action="user.signin_unlocked",
            obj=user,
            organization_id=user.organization_id,
            cleared=cleared,
        )
    return cleared
