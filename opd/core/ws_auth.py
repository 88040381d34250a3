"""Websocket sign-in for clients without the session cookie (kiosks, other programs).

Two ways, neither of which puts a long-lived credential in the URL (query strings end up in access logs):
* a ticket: `POST /api/v1/auth/ws-ticket/` (signed in) answers a random ticket valid for
  OPD_WS_TICKET_SECONDS and for one connection, presented as `?ticket=...`;
* an API token in the `Sec-WebSocket-Protocol` header, offered as two subprotocols, `opd-token` and then
  the token itself (`new WebSocket(url, ["opd-token", token])`); the consumer answers with the
  subprotocol `opd-token`, as a browser requires. The token must be live, as for the REST API.
`?token=...` is not read: such a socket stays anonymous and is closed 4401.

Sits inside channels' AuthMiddlewareStack: a signed-in session wins, a ticket or token only signs in a
socket that has none. An unknown, used or expired ticket, a dead token, or an inactive user's leaves the
socket anonymous for the consumer to refuse; so does a session, or a token, that has not given the second
factor its person's sign-in needs (opd.core.second_factor).
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
    return None


def ticket_from_scope(scope: dict[str, Any]) -> str | None:
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get("ticket")
    return values[0] if values else None


@database_sync_to_async
def user_for_token(key: str) -> Any:
    from opd.core.second_factor import token_authorizes
    from opd.core.services import TokenRefused, token_use

    try:
        token = token_use(key=key)
    except TokenRefused:
        return None
    return token.user if token_authorizes(token) else None


@database_sync_to_async
def session_lacks_second_factor(user: Any, session: Any) -> bool:
    from opd.core.second_factor import needs_second_factor, session_verified

    return not session_verified(session) and needs_second_factor(user)


@database_sync_to_async
def user_for_ticket(ticket: str) -> Any:
    from opd.core.models import User
    from opd.core.services import ws_ticket_redeem

    user_id = ws_ticket_redeem(ticket=ticket)
    if user_id is None:
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if (
            user is not None
            and user.is_authenticated
            and await session_lacks_second_factor(user, scope.get("session"))
        ):
            # A session that has not given the second factor it needs opens no socket: as signed out.
            from django.contrib.auth.models import AnonymousUser

            user = AnonymousUser()
            scope = {**scope, "user": user}
        if user is None or not user.is_authenticated:
            found = None
            ticket = ticket_from_scope(scope)
            key = token_from_scope(scope)
            if ticket:
                found = await user_for_ticket(ticket)
            elif key:
                found = await user_for_token(key)
            if found is not None:
                scope = {**scope, "user": found}
        return await super().__call__(scope, receive, send)
