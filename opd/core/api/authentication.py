"""`Authorization: Token <key>`, checked against the hashed, expiring tokens of opd.core (ApiToken)."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from opd.core.second_factor import token_authorizes
from opd.core.services import TokenRefused, token_use

# A view's token cache lookup for this request, done with something of its own (scheduling's slot
# listing): (digest, entry key, entry body).
CACHED_TOKEN_ATTRIBUTE = "_opd_cached_token"  # noqa: S105 (an attribute name, not a secret)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and 401 challenge (`WWW-Authenticate: Token`), our token lookup.

    `request.auth` is the ApiToken, so logout knows which token to revoke. A view that read this
    request's token cache entry already (`CACHED_TOKEN_ATTRIBUTE` on the request: the digest it read for,
    the entry's key and body) saves the check its round trip."""

    _cached: tuple[str, str, bytes | None] | None = None

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        self._cached = getattr(request._request, CACHED_TOKEN_ATTRIBUTE, None)
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        try:
            token = token_use(key=key, cached=self._cached)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        if not token_authorizes(token):
            raise exceptions.PermissionDenied(
                "This token was issued without a second factor, which this account's sign-in now needs: "
                "sign in again with `otp_code`.",
                code="second_factor_required",
            )
        return token.user, token
