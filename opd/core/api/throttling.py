"""Rate limits on the doors people abuse: sign-in, sign-up, password reset and booking.

A view names its scope (`throttle_scope = "booking"`) and lists `SCOPED_THROTTLES`; the rates come from
`REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]` (settings, env-overridable) under `<scope>_ip` and
`<scope>_user` (or `<scope>_<role>`, which wins for that role: patients book at a patient's pace, a
reception desk at a desk's). A rate that is not configured does not limit. Only writes count: reading a
list of appointments is not booking. Counters live in Django's cache (Redis in production), so every
process shares them. Pages use the same classes through `opd.core.ratelimit.rate_limited`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

# What the cache raises when Redis cannot be reached (stopped, or a failover under way).
CACHE_UNREACHABLE = (ConnectionInterrupted, RedisError)


def throttle_scope(view: Any, method: str | None) -> str | None:
    """The scope limiting this view's answer to `method`, or None. The schema asks it too, so the 429
    is documented exactly where it can happen."""
    scope = getattr(view, "throttle_scope", None)
    if not scope or (method or "GET").upper() in SAFE_METHODS:
        return None
    actions = getattr(view, "throttle_actions", None)
    if actions is not None and getattr(view, "action", None) not in actions:
        return None
    return str(scope)


class _ScopedThrottle(SimpleRateThrottle):
    kind = ""

    def __init__(self) -> None:
        # SimpleRateThrottle reads its rate here; ours depends on the view, known in allow_request.
        self.rate: str | None = None

    def rate_key(self, request: HttpRequest, scope: str) -> str:
        return f"{scope}_{self.kind}"

    def allow_request(self, request: Any, view: Any) -> bool:
        scope = throttle_scope(view, request.method)
        if scope is None:
            return True
        # Read on every request (not at import, as DRF's THROTTLE_RATES is) so settings overrides apply.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        self.scope = scope
        rate = rates.get(self.rate_key(request, scope)) or rates.get(f"{scope}_{self.kind}")
        self.rate = str(rate) if rate else None
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return bool(super().allow_request(request, view))
        except CACHE_UNREACHABLE as exc:
            # Without the counters (Redis down, or Sentinel promoting a replica) the request goes through
            # unlimited: a desk must keep booking patients, and abuse for the few seconds of an outage is
            # the smaller harm. Sign-in lockouts (django-axes) live in the database and still hold.
            logger.warning("rate limit %s not counted, cache unreachable: %s", self.scope, exc)
            return True


class PerIpThrottle(_ScopedThrottle):
    """Counts per client address (`NUM_PROXIES` says how many proxies' X-Forwarded-For to trust)."""

    kind = "ip"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return str(self.cache_format % {"scope": f"{self.scope}_ip", "ident": self.get_ident(request)})


class PerUserThrottle(_ScopedThrottle):
    """Counts per signed-in user; for a person not signed in, per the account the form names (the
    e-mail of a reset or sign-up: `view.throttle_subject(request)`), else not at all."""

    kind = "user"

    def rate_key(self, request: HttpRequest, scope: str) -> str:
        user = getattr(request, "user", None)
        role = getattr(user, "role", None) if user is not None and user.is_authenticated else None
        return f"{scope}_{role}" if role else f"{scope}_user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"u{user.pk}"
        else:
            subject: Callable[[Any], str | None] | None = getattr(view, "throttle_subject", None)
            name = subject(request) if subject else None
            if not name:
                return None
            ident = "n" + name.strip().lower()[:254]
        return str(self.cache_format % {"scope": f"{self.scope}_user", "ident": ident})


SCOPED_THROTTLES = [PerUserThrottle, PerIpThrottle]


def client_ip(request: HttpRequest) -> str:
    """The client's address as the throttles see it (REMOTE_ADDR, or X-Forwarded-For through
    `NUM_PROXIES` trusted proxies): django-axes counts sign-in failures per the same address."""
    return str(PerIpThrottle().get_ident(request))  # type: ignore[arg-type]  # it reads request.META only
