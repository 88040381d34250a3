"""Who must give a second factor, and the door that asks for it.

A sign-in needs a second factor when the deployment requires one (OPD_REQUIRE_SECOND_FACTOR) and the
person runs or treats (administrators, staff, doctors) in an organization that requires it
(Organization.require_second_factor, on by default), or is a superuser; and for anyone, a patient
included, who enrolled an authenticator: having one and not being asked for it would protect nothing.

Sessions: `opd.core.middleware.SecondFactorMiddleware` sends a signed-in person whose session has not given the factor to
the page that asks for it (or enrols them); under /api/ a session client is answered 403
`second_factor_required`. API tokens: a token records whether its sign-in gave the factor
(ApiToken.second_factor) and `token_authorizes` refuses one that did not, for a person who now needs it.
Websockets: a session socket must carry the verified device (`session_verified`); a ticket is issued
only over a request that passed the checks above.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import Role, User

SECOND_FACTOR_REQUIRED = (
    "This sign-in needs a second factor: a code from your authenticator app or a recovery code."
)
ENROLMENT_REQUIRED = (
    "Your organization requires a second factor and this account has none yet: sign in with a browser "
    "once to set up an authenticator app."
)


def required_by_policy(user: User) -> bool:
    """Whether the person's role and organization require a second factor (not whether they enrolled)."""
    if not settings.OPD_REQUIRE_SECOND_FACTOR or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if user.role not in (Role.ADMIN, Role.STAFF, Role.DOCTOR):
        return False
    organization = user.organization
    return organization is None or organization.require_second_factor


def is_enrolled(user: User) -> bool:
    # One query on the authenticator alone: recovery codes exist only beside one (and go with it), and a
    # signed-in patient's every page asks this until they enrol.
    return bool(user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def needs_second_factor(user: User) -> bool:
    return required_by_policy(user) or is_enrolled(user)


def token_authorizes(token: Any) -> bool:
    """Whether an API token may act for its user: one issued without a second factor may not, once the
    person's sign-in needs one (a new requirement takes effect on tokens already out)."""
    return bool(token.second_factor) or not required_by_policy(token.user)


def session_verified(session: Any) -> bool:
    return bool(session is not None and session.get(DEVICE_ID_SESSION_KEY))
