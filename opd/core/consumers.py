"""What every websocket that shows protected data shares: access that is checked again, and frames that
cannot crash it.

- Standing: a subclass's `check_access(user)` (sync, database) is run at connect, on every resync and
  whenever opd.core.realtime says the user's access narrowed; the user is loaded afresh each time, so a
  suspension, deactivation, removed membership or role change counts from the very next check. When it
  fails, the socket gets a last frame {"type": "closed", "reason": "access_revoked"} and closes with 4403.
- Frames: text that is not JSON, and binary frames, get {"type": "error", "code": "bad_frame"} instead
  of an unhandled exception.
- Groups: `join_group`/`leave_group` make the socket one of this process's local members of a group
  (opd.core.group_hub): the process is in the channel layer's group once, and its messages come to the
  socket through its inbox, in order, beside the client's frames and its own channel's messages.
- Live updates paused: when the channel layer (Redis) cannot be reached at connect, the socket gets
  {"type": "paused", "reason": "live_updates_unavailable"} and closes with 1013 (try again later); the
  page says "live updates paused" and reconnects, and its first snapshot after Redis returns resyncs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from .errors import DomainError
from .group_hub import STOP_TIMEOUT_SECONDS, Inbox, hub_for, leave_all
from .models import User
from .realtime import access_group

logger = logging.getLogger(__name__)

CLOSE_REVOKED = 4403
# RFC 6455's "try again later": the server is fine, a service it needs (the channel layer) is not.
CLOSE_TRY_AGAIN_LATER = 1013
BAD_FRAME = "bad_frame"
# What the Redis channel layer raises when Redis is down, restarting or failing over.
CHANNEL_LAYER_UNREACHABLE = (RedisError, OSError, TimeoutError)


class _Pumped:
    """A message of the client's socket or of the socket's own channel, and the future its pump waits on
    until it was handled."""

    __slots__ = ("handled", "message")

    def __init__(self, message: dict[str, Any], handled: asyncio.Future[None]) -> None:
        self.message = message
        self.handled = handled


class GuardedJsonWebsocketConsumer(AsyncJsonWebsocketConsumer):
    user_id: int | None = None
    inbox: Inbox | None = None
    hub_groups: set[str]
    _access_group: str | None = None
    _accepted = False
    _paused = False

    def check_access(self, user: User) -> None:
        """Raise a DomainError (or return False from has_access) when `user` may no longer watch."""

    def _has_access(self, user_id: int) -> bool:
        user = User.objects.filter(pk=user_id).first()
        if user is None or not user.is_active:
            return False
        try:
            self.check_access(user)
        except DomainError:
            return False
        return True

    async def still_allowed(self) -> bool:
        if self.user_id is None:
            return False
        return await database_sync_to_async(self._has_access)(self.user_id)

    async def watch_access(self, user_id: int) -> None:
        """Join the user's access group (call once the socket is accepted and authorized)."""
        self.user_id = user_id
        self._access_group = access_group(user_id)
        await self.join_group(self._access_group)

    async def leave_groups(self) -> None:
        """Stop hearing anything (subclasses leave their own groups too, then call this)."""
        if self._access_group is not None:
            await self.leave_group(self._access_group)
            self._access_group = None

    async def join_group(self, group: str) -> None:
        """Hear `group` from now on, through this process's hub (returns once the membership is live)."""
        assert self.inbox is not None  # noqa: S101  # set in __call__ before any handler runs
        await hub_for(self.channel_layer).join(group, self.inbox)
        self.hub_groups.add(group)

    async def leave_group(self, group: str) -> None:
        if group in self.hub_groups and self.inbox is not None:
            self.hub_groups.discard(group)
            await hub_for(self.channel_layer).leave(group, self.inbox)

    async def disconnect(self, code: int) -> None:
        # With Redis away, its group memberships expire by themselves (channels-redis group_expiry).
        with contextlib.suppress(*CHANNEL_LAYER_UNREACHABLE):
            await self.leave_groups()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self._serve(scope, receive, send)
        except CHANNEL_LAYER_UNREACHABLE as exc:
            # Channels' loop that receives this socket's channel-layer messages failed, or the hub's reader
            # of one of its groups did (and put the error in the inbox): Redis went away under an open
            # socket (or before it was accepted). Close it with a word, not a 1011.
            await self.pause(exc)

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__, with the hub's group messages as one more source, and one queue
        for all of them: the socket's task waits on its inbox alone.

        Channels' await_many_dispatch waits on a task per source (asyncio.wait over all of them, and a new
        task for the source that answered) for every message; a group change to 500 sockets of a process
        paid that 500 times. Here the hub puts a group message in the inbox and the socket's task wakes
        once. The client's frames and the socket's own channel are pumped into the same inbox, each pump
        waiting until its last message was handled before it reads the next, so a client that floods the
        socket is still held back by the server's flow control rather than buffered here."""
        self.scope = scope
        self.base_send = send
        inbox: Inbox = asyncio.Queue()
        self.inbox = inbox
        self.hub_groups = set()
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        pumps = [asyncio.ensure_future(self._pump(receive, inbox))]
        try:
            if self.channel_layer is not None:
                self.channel_name = await self.channel_layer.new_channel()
                self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
                pumps.append(asyncio.ensure_future(self._pump(self.channel_receive, inbox)))
            while True:
                item = await inbox.get()
                if isinstance(item, _Pumped):
                    try:
                        await super().dispatch(item.message)
                    finally:
                        item.handled.set_result(None)
                elif isinstance(item, BaseException):
                    raise item  # a source failed, or the hub's reader of one of this socket's groups did
                else:
                    await self._dispatch_group(item)
        except StopConsumer:
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            # The pumps are waited for, as Channels waits for its source tasks (one left inside the channel
            # layer's receive when its loop closes holds the layer's receive lock), for a while, not for
            # ever: a cancellation lost inside redis-py's blocking pop must not hang the socket's end.
            await asyncio.wait(pumps, timeout=STOP_TIMEOUT_SECONDS)
            # Ended without leaving (an error in a handler): the hub must not keep filling a dead inbox.
            if self.hub_groups:
                await leave_all(self.channel_layer, self.hub_groups, inbox)

    @staticmethod
    async def _pump(source: Any, inbox: Inbox) -> None:
        """Move `source`'s messages into the inbox one at a time (the next is read once this one was
        handled); its failure goes into the inbox too, where the socket's task raises it."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await source()
                handled = loop.create_future()
                inbox.put_nowait(_Pumped(message, handled))
                await handled
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            inbox.put_nowait(exc)

    async def _dispatch_group(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first closes old database connections on a thread (a hop of ~150 us, all
        # sockets through one thread): for a group message to a thousand sockets that was most of the
        # fan-out's time. Handlers reach the database only through database_sync_to_async, which closes
        # old connections around each call itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self._accepted = True

    async def pause(self, exc: BaseException) -> None:
        """The channel layer is unreachable: say so, and close with "try again later" (once)."""
        if self._paused:
            return
        self._paused = True
        logger.warning("live updates paused, channel layer unreachable: %s: %s", type(exc).__name__, exc)
        self.user_id = None
        self._access_group = None
        if self._accepted:
            await self.send_json({"type": "paused", "reason": "live_updates_unavailable"})
        await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def revoke(self) -> None:
        # Leave the groups first: until the client's disconnect arrives the consumer would otherwise
        # still be handed group messages (and send them after the close).
        self.user_id = None
        await self.leave_groups()
        await self.send_json({"type": "closed", "reason": "access_revoked"})
        await self.close(code=CLOSE_REVOKED)

    async def access_revoked(self, message: dict[str, Any]) -> None:
        if self.user_id is not None and not await self.still_allowed():
            await self.revoke()

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data is None:
            await self.send_error(BAD_FRAME, "Send JSON in text frames; binary frames are not understood.")
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            await self.send_error(BAD_FRAME, "That frame is not JSON.")
            return
        await self.receive_json(content, **kwargs)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)
