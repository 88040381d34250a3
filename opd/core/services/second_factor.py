"""Second-factor enrolment and verification (TOTP through django-otp, plus one-time recovery codes).

Enrolment: `second_factor_enrolment_begin` gives the person a new, unconfirmed authenticator (its secret
shown once, as a QR code and as text); `second_factor_enrolment_confirm` checks the first code from it,
confirms it and hands out fresh recovery codes. Each later sign-in is checked by `second_factor_verify`
(an app code or an unused recovery code). An administrator can reset a person's factor (a lost phone):
their devices go, their API tokens are revoked, and the next sign-in enrols again.

Every step is audited (`auth.second_factor.*`), failures included. A wrong code also counts as a failed
sign-in for django-axes (`user_login_failed`), so guessing codes locks the account like guessing
passwords; django-otp's per-device throttle slows it further.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..audit import audit
from ..errors import PermissionDenied, ValidationFailed
from ..models import RecoveryCode, RecoveryCodeDevice, User, recovery_code_digest
from ..second_factor import required_by_policy
from .tokens import tokens_revoke_all

AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
CODE_FIELD = "otp_code"
WRONG_CODE = "That code is not right (or was already used). Codes change every 30 seconds; try the newest."


def _audit(actor: User | None, user: User, action: str, **data: object) -> None:
    audit(
        actor=actor,
        action=f"auth.second_factor.{action}",
        obj=user,
        organization_id=user.organization_id,
        **data,
    )


def _new_recovery_codes(user: User) -> list[str]:
    device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": RECOVERY_NAME})
    RecoveryCode.objects.filter(device=device).delete()
    codes = [
        f"{chunk[:5]}-{chunk[5:]}"
        for chunk in (secrets.token_hex(5) for _ in range(settings.OPD_RECOVERY_CODE_COUNT))
    ]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=recovery_code_digest(c)) for c in codes
    )
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return codes


def second_factor_enrolment_begin(*, user: User) -> TOTPDevice:
    """A new authenticator for `user`, unconfirmed until its first code is checked. A half-finished
    earlier enrolment is replaced (its secret was shown once and may be lost)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def second_factor_enrolment_confirm(*, user: User, device: TOTPDevice, code: str) -> list[str]:
    """Confirm `device` with its first code; answers the new recovery codes (shown once). A confirmed
    authenticator the person had before is replaced by this one."""
    with transaction.atomic():
        locked = (
            TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=user, confirmed=False).first()
        )
        if locked is None:
            raise ValidationFailed(
                "This enrolment has expired: start again.", fields={CODE_FIELD: "Start the enrolment again."}
            )
        if not locked.verify_token((code or "").strip()):
            _audit(user, user, "enrolment_failed")
            raise ValidationFailed(WRONG_CODE, fields={CODE_FIELD: WRONG_CODE}, code="second_factor_invalid")
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        locked.confirmed = True
        locked.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        _audit(user, user, "enrolled")
    device.confirmed = True
    return codes


def second_factor_verify(*, user: User, code: str, request: HttpRequest | None = None) -> Device:
    """The device that accepts `code` for `user`: the authenticator, or a recovery code (used up).
    Raises ValidationFailed naming `otp_code` otherwise, after counting the failure."""
    code = (code or "").strip()
    if code:
        with transaction.atomic():
            # One device at a time, each locked while it checks (django-otp's for_verify), so one code
            # cannot be accepted twice by two requests at once.
            # An app's code is digits; a recovery code has letters or a dash: ask only the device the code
            # is for, so a mistyped code does not slow down (throttle) the other one as well.
            model = TOTPDevice if code.isdigit() else RecoveryCodeDevice
            for device in model.objects.select_for_update().filter(user=user, confirmed=True):
                if device.verify_token(code):
                    used = "recovery_code" if isinstance(device, RecoveryCodeDevice) else "authenticator"
                    _audit(user, user, "verified", method=used)
                    return device
    with transaction.atomic():
        _audit(user, user, "failed")
    user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
    raise ValidationFailed(WRONG_CODE, fields={CODE_FIELD: WRONG_CODE}, code="second_factor_invalid")


def second_factor_recovery_codes_regenerate(*, user: User) -> list[str]:
    """Fresh recovery codes for an enrolled person (the old ones stop working)."""
    with transaction.atomic():
        if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise ValidationFailed("Set up an authenticator app first.", code="second_factor_not_enrolled")
        codes = _new_recovery_codes(user)
        _audit(user, user, "recovery_codes_renewed")
    return codes


def second_factor_remove(*, actor: User, user: User) -> int:
    """Remove `user`'s second factor: an administrator's reset (a lost phone), or a person turning off a
    factor their organization does not require. Their API tokens are revoked with it. Answers how many
    devices went."""
    if actor.pk == user.pk and required_by_policy(user):
        raise PermissionDenied(
            "Your organization requires a second factor: an administrator can reset it if you lost it.",
            code="second_factor_required_by_policy",
        )
    with transaction.atomic():
        removed: int = TOTPDevice.objects.filter(user=user).delete()[0]
        # (the codes go with their device: count devices, not rows)
        removed += (
            RecoveryCodeDevice.objects.filter(user=user).delete()[1].get(RecoveryCodeDevice._meta.label, 0)
        )
        if removed:
            tokens_revoke_all(actor=actor, user=user, reason="second_factor_removed")
            _audit(actor, user, "removed" if actor.pk == user.pk else "reset")
    return removed
