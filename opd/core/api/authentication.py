"""`Authorization: Token <key>`, checked against the hashed, expiring tokens of opd.core (ApiToken)."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from opd.core.second_factor import token_authorizes
from opd.core.services import TokenRefused, token_use


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and 401 challenge (`WWW-Authenticate: Token`), our token lookup.

    `request.auth` is the ApiToken, so logout knows which token to revoke."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        try:
            token = token_use(key=key)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        if not token_authorizes(token):
            raise exceptions.PermissionDenied(
                "This token was issued without a second factor, which this account's sign-in now needs: "
                "sign in again with `otp_code`.",
                code="second_factor_required",
            )
        return token.user, token
