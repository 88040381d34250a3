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
  server -> {"type": "consultation", "consultation_id": 9, "appointment_id": 1234, "version": 5,
             "status": "draft"}   a consultation of the doctor's was written (doctor queues only;
                                  consultations.realtime); not part of the queue's versions
  client -> {"type": "resync"}   answered with a snapshot, at most one a second per socket (sooner:
                                 {"type": "error", "code": "rate_limited", "retry_after": seconds})
  server -> {"type": "alert", "queue": "doctor:7", "appointment_id": 1234, "alert": {"kind": "news2",
             "level": "emergency", "title": ..., "action": ..., ...}}   NEWS2 rose to an urgent or
            emergency response, or ("kind": "rescore_due") a waiting patient's observations are due;
            no version (nothing in the queue changed), no patient name on a clinic's queue
  client -> {"type": "ping"}     answered with {"type": "pong"}
  server -> {"type": "paused", "reason": "live_updates_unavailable"}, then close 1013: the channel
            layer (Redis) cannot be reached; reconnect later (opd.core.consumers)
  server -> {"type": "error", "code": "bad_frame", ...}   a frame that is not JSON text
  server -> {"type": "closed", "reason": "access_revoked"}, then close 4403: the user's access to this
            queue ended (suspended, deactivated, removed from the clinic, role changed). Checked again on
            connect, on each resync and when opd.core.realtime says the user's access narrowed.
Events reach a client in version order with no gaps: one that would leave a gap (a message lost, or two
processes' messages crossing) is replaced by a fresh snapshot, and one older than what the client has
is dropped. A client that still sees version != last + 1 sends "resync".

Access log: every snapshot of a doctor's queue sent (it names patients) is one access row, with the
socket's address and user agent; events are not logged one by one (scheduling.access says why).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from opd.core.audit import access_context
from opd.core.consumers import CHANNEL_LAYER_UNREACHABLE, GuardedJsonWebsocketConsumer
from opd.core.errors import NotFound, PermissionDenied
from opd.core.models import User
from opd.core.ws_auth import TOKEN_SUBPROTOCOL

from .access import log_queue_view
from .models import Doctor
from .realtime import event_frame, group_name
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


class QueueConsumer(GuardedJsonWebsocketConsumer):
    kind: str = DOCTOR_QUEUE

    queue: str | None = None
    version: int = 0
    pk: int = 0
    # time.time() of the last resync answered (time-machine moves it in tests; no sleeping). Snapshots
    # the server sends of itself (on connect, after a gap) do not count: the client did not ask.
    last_resync_at: float = -math.inf
    # The ids of the alerts this socket passed on lately: an alert delivered twice is shown once.
    alerts_seen: deque[str] | None = None

    async def connect(self) -> None:
        # A browser only completes the handshake if one of the subprotocols it offered is chosen.
        offered = self.scope.get("subprotocols") or []
        await self.accept(TOKEN_SUBPROTOCOL if TOKEN_SUBPROTOCOL in offered else None)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        pk = self.pk = int(self.scope["url_route"]["kwargs"]["pk"])
        try:
            # The user as the database has them now, not as the handshake found them.
            await database_sync_to_async(self._authorize_fresh)(user.pk, pk)
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except PermissionDenied:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.queue = queue_name(self.kind, pk)
        # Join before reading the snapshot: an event committed meanwhile is either in the snapshot (and
        # dropped as old when it arrives) or newer than it (and passed on).
        try:
            await self.join_group(group_name(self.queue))
            await self.watch_access(user.pk)
        except CHANNEL_LAYER_UNREACHABLE as exc:
            # Without Redis no change would reach this socket: a snapshot now would look live and go
            # stale. The page says "live updates paused" and comes back (snapshot included) after Redis.
            self.queue = None
            await self.pause(exc)
            return
        await self.send_snapshot()

    def _authorize_fresh(self, user_id: int, pk: int) -> None:
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise PermissionDenied("This account is closed.")
        self.check_access(user, pk)

    def check_access(self, user: User, pk: int | None = None) -> None:
        pk = self.pk if pk is None else pk
        if self.kind == DOCTOR_QUEUE:
            doctor_queue_access(user, pk)
        else:
            clinic_queue_access(user, pk)

    async def leave_groups(self) -> None:
        if self.queue is not None:
            await self.leave_group(group_name(self.queue))
            self.queue = None
        await super().leave_groups()

    async def send_snapshot(self) -> None:
        """A fresh snapshot, only while the user may still see the queue (else the socket closes)."""
        if not await self.still_allowed():
            await self.revoke()
            return
        snapshot = await database_sync_to_async(self._logged_snapshot)()
        self.version = snapshot["version"]
        await self.send_json(
            {"type": "snapshot", "queue": self.queue, "version": self.version, "snapshot": snapshot}
        )

    def _logged_snapshot(self) -> dict[str, Any]:
        """The snapshot, logged as shown to the user when it names patients (a doctor's queue)."""
        assert self.queue is not None  # noqa: S101  # only called on a joined socket
        snapshot = queue_snapshot(self.queue)
        if self.kind == DOCTOR_QUEUE:
            client = self.scope.get("client") or (None, None)
            headers = dict(self.scope.get("headers") or [])
            with access_context(
                source_ip=client[0], user_agent=headers.get(b"user-agent", b"").decode("latin-1")
            ):
                log_queue_view(
                    self.scope["user"],
                    Doctor.objects.get(pk=self.pk),
                    snapshot=snapshot,
                    via="websocket",
                )
        return snapshot

    async def resync(self) -> None:
        # Each snapshot reads the whole day: one a second per socket is plenty for a client that lost
        # track, and a loop of resyncs cannot turn one socket into a load on the database.
        now = time.time()
        wait = self.last_resync_at + settings.OPD_QUEUE_RESYNC_INTERVAL_SECONDS - now
        if wait > 0:
            await self.send_error(
                "rate_limited",
                "Too many resyncs: wait before asking again.",
                # Whole ms, rounded up; first to the microsecond, since epoch seconds as floats carry noise
                # of a few tenths of a microsecond that would otherwise round 600 ms up to 601.
                retry_after=math.ceil(round(wait * 1000, 3)) / 1000,
            )
            return
        self.last_resync_at = now
        await self.send_snapshot()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.queue is None:
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resync":
            await self.resync()
        elif kind == "ping":
            await self.send_json({"type": "pong", "version": self.version})
        else:
            await self.send_json(
                {"type": "error", "code": "unknown_message", "message": "Send resync or ping."}
            )

    async def queue_event(self, message: dict[str, Any]) -> None:
        if self.queue is None:
            return  # closed (revoked) while this message was on its way
        version = message["version"]
        if version <= self.version:
            return  # the client's state already includes it
        if version != self.version + 1:
            await self.send_snapshot()
            return
        self.version = version
        text = message.get("text")
        if text is None:  # a message from a sender that did not serialize it (older code, a test)
            text = event_frame(message)
        # The frame was serialized once for the whole group (scheduling.realtime): every socket sends the
        # same text, so a change costs each socket a version check and a write, no JSON encoding.
        await self.send(text_data=text)

    async def queue_alert(self, message: dict[str, Any]) -> None:
        """An alert (NEWS2 rose, observations due): passed on as is, outside the version sequence, since
        it changes no row of the queue (the priority change that may come with it is an event of its own)."""
        if self.queue is None:
            return
        alert_id = message["alert"].get("id")
        if alert_id is not None:
            if self.alerts_seen is None:
                self.alerts_seen = deque(maxlen=256)
            if alert_id in self.alerts_seen:
                return
            self.alerts_seen.append(alert_id)
        await self.send_json(
            {
                "type": "alert",
                "queue": message["queue"],
                "appointment_id": message["appointment_id"],
                "alert": message["alert"],
            }
        )

    async def consultation_changed(self, message: dict[str, Any]) -> None:
        """A consultation of this doctor's was written (consultations.realtime): ids, version and status
        only. Outside the queue's versions: it changes a record, not the queue's order."""
        if self.queue is None or self.kind != DOCTOR_QUEUE:
            return
        await self.send_json(
            {
                "type": "consultation",
                "consultation_id": message["consultation_id"],
                "appointment_id": message["appointment_id"],
                "version": message["version"],
                "status": message["status"],
            }
        )


class DoctorQueueConsumer(QueueConsumer):
    kind = DOCTOR_QUEUE


class ClinicQueueConsumer(QueueConsumer):
    kind = CLINIC_QUEUE
