"""Websockets of the live queue: ws/queue/doctor/<id>/ and ws/queue/clinic/<id>/.

Who may connect: the doctor's own queue, by the doctor and by admins and staff of a clinic where the
doctor works; a clinic's queue (no patient names: the waiting-room display), by its admins and staff.
Signed in by the session cookie or an API token (opd.core.ws_auth). Anyone else is accepted and closed
at once with a code that says why, so a page knows not to reconnect: 4401 not signed in, 4403 not
allowed, 4404 no such doctor or clinic (also another organization's).

Protocol, JSON both ways:
  server -> {"type": "snapshot", "queue": "doctor:7", "version": 41, "snapshot": {...}}   on connect
                                                                                            and on resync
  server -> {"type": "event", "queue": "doctor:7", "version": 42, "action": "checked_in",
             "appointment_id": 1234, "entry": {...}}                                        each change
  client -> {"type": "resync"}   answered with a snapshot
  client -> {"type": "ping"}     answered with {"type": "pong"}
Events reach a client in version order with no gaps: one that would leave a gap (a message lost, or two
processes' messages crossing) is replaced by a fresh snapshot, and one older than what the client has
is dropped. A client that still sees version != last + 1 sends "resync".
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from opd.core.errors import NotFound, PermissionDenied
from opd.core.ws_auth import TOKEN_SUBPROTOCOL

from .realtime import group_name
from .selectors import (
    CLINIC_QUEUE,
    DOCTOR_QUEUE,
    clinic_queue_access,
    doctor_queue_access,
    queue_name,
    queue_snapshot,
)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class QueueConsumer(AsyncJsonWebsocketConsumer):
    kind: str = DOCTOR_QUEUE

    queue: str | None = None
    version: int = 0

    async def connect(self) -> None:
        # A browser only completes the handshake if one of the subprotocols it offered is chosen.
        offered = self.scope.get("subprotocols") or []
        await self.accept(TOKEN_SUBPROTOCOL if TOKEN_SUBPROTOCOL in offered else None)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        try:
            await database_sync_to_async(self._authorize)(user, pk)
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except PermissionDenied:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.queue = queue_name(self.kind, pk)
        # Join before reading the snapshot: an event committed meanwhile is either in the snapshot (and
        # dropped as old when it arrives) or newer than it (and passed on).
        await self.channel_layer.group_add(group_name(self.queue), self.channel_name)
        await self.send_snapshot()

    def _authorize(self, user, pk: int) -> None:
        if self.kind == DOCTOR_QUEUE:
            doctor_queue_access(user, pk)
        else:
            clinic_queue_access(user, pk)

    async def disconnect(self, code: int) -> None:
        if self.queue is not None:
            await self.channel_layer.group_discard(group_name(self.queue), self.channel_name)

    async def send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(queue_snapshot)(self.queue)
        self.version = snapshot["version"]
        await self.send_json(
            {"type": "snapshot", "queue": self.queue, "version": self.version, "snapshot": snapshot}
        )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.queue is None:
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resync":
            await self.send_snapshot()
        elif kind == "ping":
            await self.send_json({"type": "pong", "version": self.version})
        else:
            await self.send_json(
                {"type": "error", "code": "unknown_message", "message": "Send resync or ping."}
            )

    async def queue_event(self, message: dict[str, Any]) -> None:
        version = message["version"]
        if version <= self.version:
            return  # the client's state already includes it
        if version != self.version + 1:
            await self.send_snapshot()
            return
        self.version = version
        await self.send_json(
            {
                "type": "event",
                "queue": message["queue"],
                "version": version,
                "action": message["action"],
                "appointment_id": message["appointment_id"],
                "entry": message["entry"],
            }
        )


class DoctorQueueConsumer(QueueConsumer):
    kind = DOCTOR_QUEUE


class ClinicQueueConsumer(QueueConsumer):
    kind = CLINIC_QUEUE
