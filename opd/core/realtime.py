"""Access revocation reaches open websockets: one channel-layer group per user, told when their access
narrows, so every socket of theirs re-checks at once instead of at its next resync.

The services that narrow a person's access (user_deactivate, user_change_role, membership_remove in
opd.core; doctor_set_approval in scheduling) publish ACCESS_REVOKED after commit with the user's id;
CoreConfig.ready() subscribes `on_access_revoked`, which sends
    {"type": "access.revoked", "reason": "suspended"}
to the user's access group. Every consumer that shows protected data (opd.core.consumers.
GuardedJsonWebsocketConsumer) is in that group, re-checks the user's standing from the database and,
if it no longer holds, sends {"type": "closed", "reason": "access_revoked"} and closes with 4403.
"""

from __future__ import annotations

from typing import Any

from .channel_send import group_send


def access_group(user_id: int) -> str:
    return f"access.user.{user_id}"


def on_access_revoked(*, user_id: int, reason: str, **_: Any) -> None:
    """Event handler (after commit): tell every open socket of the user to re-check."""
    group_send(access_group(user_id), {"type": "access.revoked", "reason": reason})
