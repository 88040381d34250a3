"""Sign-ins, failures, lockouts and sign-outs in the audit trail.

Django's auth signals and django-axes' lockout signal call these (opd.core.receivers, connected in
CoreConfig.ready), whichever door was used: the login pages, the admin, the API token endpoint. The
source address and user agent come from the request context (opd.core.audit). A failure keeps the
username that was tried, never the password.
"""

from __future__ import annotations

from ..audit import audit
from ..models import AuditEvent, User

USERNAME_LENGTH = 150  # User.username's length: anything longer was not a username


def _tried(username: object) -> tuple[str, User | None]:
    name = str(username or "")[:USERNAME_LENGTH]
    return name, (User.objects.filter(username=name).first() if name else None)


def signin_succeeded(*, user: User, method: str) -> AuditEvent:
    """`method`: "session" (a login page or the admin) or "token" (POST /api/v1/auth/token/)."""
    return audit(
        actor=user, action="user.signed_in", obj=user, organization_id=user.organization_id, method=method
    )


def signin_failed(*, username: object, method: str) -> AuditEvent:
    """A wrong password, an unknown or inactive account, or an attempt while locked out. The event
    belongs to the account's organization when the name is one of ours, so its admins see attacks on it."""
    name, user = _tried(username)
    return audit(
        actor=None,
        action="user.signin_failed",
        obj=user if user is not None else ("core.user", ""),
        organization_id=user.organization_id if user is not None else None,
        username=name,
        known_account=user is not None,
        method=method,
    )


def signin_locked_out(*, username: object, method: str) -> AuditEvent:
    """django-axes locked sign-in for this name or address (sent at the failure that reached the limit
    and again at each attempt during the cool-off, which restarts it)."""
    name, user = _tried(username)
    return audit(
        actor=None,
        action="user.locked_out",
        obj=user if user is not None else ("core.user", ""),
        organization_id=user.organization_id if user is not None else None,
        username=name,
        method=method,
    )


def signout_recorded(*, user: User, reason: str) -> AuditEvent:
    """A session ended: the person signed out ("logout"), or it expired ("expired")."""
    return audit(
        actor=user, action="user.signed_out", obj=user, organization_id=user.organization_id, reason=reason
    )
