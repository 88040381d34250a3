"""One channel-layer group membership per process (per event loop), fanned out in memory to the
websockets of that process that joined the group.

Without it, every socket is a member of its groups itself: a change to a clinic's queue watched by 500
sockets of a process is received 500 times over (channels-redis hands one Redis message to 500 per-socket
receive buffers, and each socket's receive wakes, re-arms two futures and hops to a thread to close old
database connections before its handler runs). With it, the process's hub is the group's only member
here: one reader receives the message once and puts it in each local socket's inbox, and each socket's
consumer takes it from there in its own task (opd.core.consumers), in the order the reader got them.

- Keyed by the running event loop and the channel layer: tests run a loop per test (and the in-memory
  layer's queues belong to one loop), so a hub, its reader tasks and its futures are only ever used from
  the loop that made them. Nothing is started before the first join; a group's reader is cancelled and
  its membership discarded when its last local member leaves.
- One hub channel per group (`layer.new_channel()`), so the reader knows the group of each message by
  the channel it came on, whoever sent it.
- channels-redis (and the in-memory layer) drop a member `group_expiry` after it joined (a day by
  default): a waiting-room screen open longer stopped hearing its queue. The hub re-adds each of its
  memberships every quarter of that.
- If the channel layer fails under a reader (Redis gone), each member gets the error in its inbox and
  the group is forgotten: the consumer pauses its socket (opd.core.consumers), and the next joiner makes
  a fresh membership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from typing import Any

logger = logging.getLogger(__name__)

# How long a leaving member waits for its group's reader to end.
STOP_TIMEOUT_SECONDS = 10
# What a member's inbox holds from the hub: messages of its groups, or the error that ended a group's
# reader (a consumer's inbox also receives its own socket's messages: opd.core.consumers).
Inbox = asyncio.Queue[Any]


class _Group:
    __slots__ = ("channel", "joined", "members", "reader")

    def __init__(self, loop: asyncio.AbstractEventLoop, inbox: Inbox) -> None:
        self.channel = ""
        # Done once the membership is in the layer: later joiners wait for it before they return (a
        # consumer reads its snapshot after joining, and counts on every later change reaching it).
        self.joined: asyncio.Future[None] = loop.create_future()
        # Insertion-ordered set of the local members' inboxes.
        self.members: dict[Inbox, None] = {inbox: None}
        self.reader: asyncio.Task[None] | None = None


class GroupHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.groups: dict[str, _Group] = {}
        self.refresher: asyncio.Task[None] | None = None

    def refresh_interval(self) -> float:
        return max(float(getattr(self.layer, "group_expiry", 86400)) / 4, 0.05)

    async def join(self, group: str, inbox: Inbox) -> None:
        """Deliver `group`'s messages to `inbox` from now on (returns once the membership is live)."""
        while (entry := self.groups.get(group)) is not None:
            entry.members[inbox] = None
            try:
                await asyncio.shield(entry.joined)
                return
            except BaseException:
                entry.members.pop(inbox, None)
                task = asyncio.current_task()
                if entry.joined.cancelled() and task is not None and not task.cancelling():
                    continue  # the first joiner was cancelled mid-join, not this one: try again
                raise
        loop = asyncio.get_running_loop()
        entry = self.groups[group] = _Group(loop, inbox)
        try:
            entry.channel = await self.layer.new_channel()
            await self.layer.group_add(group, entry.channel)
        except BaseException as exc:
            if self.groups.get(group) is entry:
                del self.groups[group]
            if isinstance(exc, asyncio.CancelledError):
                entry.joined.cancel()
            else:
                entry.joined.set_exception(exc)
                # Retrieved here, so a join with no other waiter logs no "never retrieved" warning.
                entry.joined.exception()
            raise
        entry.reader = loop.create_task(self._read(group, entry), name=f"group-hub {group}")
        entry.joined.set_result(None)
        if self.refresher is None:
            self.refresher = loop.create_task(self._refresh(), name="group-hub refresh")

    async def leave(self, group: str, inbox: Inbox) -> None:
        """Stop delivering `group` to `inbox`; the last local member leaving ends the membership."""
        entry = self.groups.get(group)
        if entry is None or inbox not in entry.members:
            return
        del entry.members[inbox]
        # A member can only leave once its join returned, so the membership is live here; members that
        # are still waiting for it keep the entry (the first joiner is one until its join returns).
        if entry.members:
            return
        del self.groups[group]
        if not self.groups and self.refresher is not None:
            self.refresher.cancel()
            self.refresher = None
        await self._stop(entry)
        await self.layer.group_discard(group, entry.channel)

    async def _stop(self, entry: _Group) -> None:
        """Cancel the group's reader and wait for it to end, as Channels does with a consumer's receive (a
        reader left inside channels-redis's receive when its loop closes holds the layer's receive lock,
        and the next loop's receivers failed on it). Waited for a while, not for ever: a cancellation
        lost inside redis-py's blocking pop (seen in tests, with plain Channels consumers too) must not
        hang the socket that leaves."""
        reader = entry.reader
        if reader is None or reader.done():
            return
        reader.cancel()
        # wait(), not `await reader`: this caller's own cancellation propagates, the reader's does not.
        await asyncio.wait([reader], timeout=STOP_TIMEOUT_SECONDS)

    async def _read(self, group: str, entry: _Group) -> None:
        try:
            while True:
                message = await self.layer.receive(entry.channel)
                # No await in this loop: every member gets the message before the next one is read, and
                # the members cannot change meanwhile. The members share the dict: handlers read it only.
                for inbox in entry.members:
                    inbox.put_nowait(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "group %s: receiving failed, its sockets are told: %s: %s", group, type(exc).__name__, exc
            )
            if self.groups.get(group) is entry:
                del self.groups[group]
            for inbox in entry.members:
                inbox.put_nowait(exc)
            entry.members.clear()
            if not self.groups and self.refresher is not None:
                self.refresher.cancel()
                self.refresher = None

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval())
            for group, entry in list(self.groups.items()):
                if self.groups.get(group) is not entry:
                    continue  # its last member left while an earlier group was re-added
                try:
                    await self.layer.group_add(group, entry.channel)
                    if self.groups.get(group) is not entry:
                        # Left while this re-add was under way: the discard may have gone first.
                        await self.layer.group_discard(group, entry.channel)
                except Exception as exc:  # a refresh that fails is tried again next time
                    logger.warning(
                        "group %s: re-adding the membership failed: %s: %s", group, type(exc).__name__, exc
                    )


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, GroupHub]] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()  # event loops of several threads (a test's, a server's) look up at once


def hub_for(layer: Any) -> GroupHub:
    """The hub of the running event loop for `layer` (made on first use)."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        per_loop = _hubs.get(loop)
        if per_loop is None:
            per_loop = _hubs[loop] = {}
        hub = per_loop.get(id(layer))
        if hub is None or hub.layer is not layer:
            hub = per_loop[id(layer)] = GroupHub(layer)
    return hub


async def leave_all(layer: Any, groups: set[str], inbox: Inbox) -> None:
    """Leave every group in `groups` (a consumer ending), whatever the layer says."""
    hub = hub_for(layer)
    for group in list(groups):
        groups.discard(group)
        with contextlib.suppress(Exception):
            await hub.leave(group, inbox)
