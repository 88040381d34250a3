"""Websocket sign-in with an API token, for clients without the session cookie (kiosks, other programs).

The token is read from the `Sec-WebSocket-Protocol` header, offered as two subprotocols,
`opd-token` and then the token itself (browsers: `new WebSocket(url, ["opd-token", token])`), or from
the query string, `?token=...` (simpler, but query strings end up in access logs: prefer the header).
The consumer answers with the subprotocol `opd-token`, as a browser requires.

Sits inside channels' AuthMiddlewareStack: a signed-in session wins, a token only signs in a socket that
has none. An unknown token, or an inactive user's, leaves the socket anonymous for the consumer to refuse.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

TOKEN_SUBPROTOCOL = "opd-token"  # noqa: S105 (a protocol name, not a secret)


def token_from_scope(scope: dict[str, Any]) -> str | None:
    offered = list(scope.get("subprotocols") or [])
    if TOKEN_SUBPROTOCOL in offered:
        position = offered.index(TOKEN_SUBPROTOCOL)
        if position + 1 < len(offered):
            return offered[position + 1]
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get("token")
    return values[0] if values else None


@database_sync_to_async
def user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = token_from_scope(scope)
            found = await user_for_token(key) if key else None
            if found is not None:
                scope = {**scope, "user": found}
        return await super().__call__(scope, receive, send)
