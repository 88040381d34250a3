"""In-app notifications pushed to a signed-in user's open pages: ws/notifications/.

One group per user (backends.user_group); the send task's InAppBackend does the group_send once the
message's row is claimed, outside any transaction. Frames: {"type": "notification", id, kind, subject,
body, created_at, unread_count} for a new message; {"type": "unread", "unread_count"} when messages were
marked read elsewhere (the portal inbox updates its list and the count in the navigation from them). The socket only listens: a frame from the client gets
{"type": "error", "code": "bad_frame"} if it is not JSON and is otherwise ignored. The messages are the
user's own, so only a closed account ends the socket: deactivation (opd.core.realtime) sends
{"type": "closed", "reason": "access_revoked"} and closes with 4403; each message forwarded re-checks it.
"""

from __future__ import annotations

from opd.core.consumers import GuardedJsonWebsocketConsumer

from .backends import user_group

# Close codes in the application range: 4401 mirrors HTTP 401.
NOT_SIGNED_IN = 4401


class NotificationConsumer(GuardedJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=NOT_SIGNED_IN)
            return
        self.group_name = user_group(user.pk)
        await self.join_group(self.group_name)
        await self.accept()
        await self.watch_access(user.pk)

    async def leave_groups(self) -> None:
        if self.group_name:
            await self.leave_group(self.group_name)
            self.group_name = None
        await super().leave_groups()

    async def receive_json(self, content, **kwargs) -> None:
        """Nothing to receive; pages only listen."""

    async def notification_message(self, event: dict) -> None:
        # One primary-key read per message: in-app messages are few, and a closed account must not
        # receive the next one even if its revocation message was lost.
        if self.group_name is None:
            return
        if not await self.still_allowed():
            await self.revoke()
            return
        await self.send_json(event["notification"])

    async def notification_unread(self, event: dict) -> None:
        """Messages were marked read on another page: the new unread count."""
        if self.group_name is None:
            return
        await self.send_json({"type": "unread", "unread_count": event["unread_count"]})
