"""In-app notifications pushed to a signed-in user's open pages: ws/notifications/.

One group per user (backends.user_group); the send task's InAppBackend does the group_send once the
message's row is claimed, outside any transaction. The socket only listens: nothing is read from it.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .backends import user_group

# Close codes in the application range: 4401 mirrors HTTP 401.
NOT_SIGNED_IN = 4401


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=NOT_SIGNED_IN)
            return
        self.group_name = user_group(user.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Nothing to receive; pages only listen."""

    async def notification_message(self, event: dict) -> None:
        await self.send_json(event["notification"])
