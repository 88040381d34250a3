"""The outbox's two delivery paths: marking what the publishing process delivered, and the relay.

opd.core.events.publish writes each event to OutboxEvent in the change's transaction and delivers it
in process after the commit (the fast path: live queues hear of a booking at once). Marking the row
delivered would be a second write on the request, so it is deferred: the ids are collected here and one
thread per process marks them in a single UPDATE every OPD_OUTBOX_MARK_INTERVAL_SECONDS. If the process
dies before that, or the commit's handlers never ran (killed between the commit and them), the row is
still undelivered when its `due_at` (OPD_OUTBOX_GRACE_SECONDS after the change) passes and the relay
delivers it: at least once, never lost. Consumers are idempotent, so a second delivery does nothing more.

Handlers subscribed with after_response=True (the booking's Celery task, the live queues' channel-layer
sends) run on a third thread, the sender (send_after_response), once the request has answered; the row is
marked only after they succeeded, so the relay still owns an event that a dying process had queued.

The relay (outbox_relay_once: the `core.outbox_relay` beat task every OPD_OUTBOX_RELAY_INTERVAL_SECONDS,
or `manage.py outbox_relay`) claims due rows with SELECT ... FOR UPDATE SKIP LOCKED and moves their
`due_at` on by the back-off before it commits the claim, so two relays never deliver one row at the same
time, and a relay that dies mid-delivery leaves the rows to be taken again once the back-off passes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


class _ProcessThread:
    """A daemon thread of this process, started on first need, and an exit hook registered once: what the
    marks and the sender share. Fork-safe: in a forked child (gunicorn, Celery prefork) the parent's thread
    is not this process's, so `forked()` says to drop what the parent had queued. Callers hold their own
    lock around every call."""

    def __init__(self, name: str, target: Callable[[], None], at_exit: Callable[[], Any]) -> None:
        self._name, self._target, self._at_exit = name, target, at_exit
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None
        self._hooked = False

    def forked(self) -> bool:
        if self._pid == os.getpid():
            return False
        self._pid, self._thread = os.getpid(), None
        return True

    def ensure_running(self) -> None:
        if not self._hooked:
            # A process that exits cleanly (a gunicorn worker recycled, a command ending) finishes what it
            # has rather than leave it to the relay.
            atexit.register(self._at_exit)
            self._hooked = True
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._target, name=self._name, daemon=True)
            self._thread.start()

    def ended(self) -> None:
        """The thread is returning (idle): the next ensure_running starts another."""
        self._thread = None


class _DeliveredMarks:
    """The ids this process delivered and has not marked yet, and the thread that marks them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._worker = _ProcessThread("outbox-marks", self._run, self.flush)

    def add(self, pk: int) -> None:
        with self._lock:
            if self._worker.forked():
                self._ids = []  # the parent's ids stay the parent's
            self._ids.append(pk)
            self._worker.ensure_running()

    def _run(self) -> None:
        while True:
            time.sleep(settings.OPD_OUTBOX_MARK_INTERVAL_SECONDS)
            with self._lock:
                if not self._ids:
                    # Idle: end the thread (add() starts another) rather than hold it and a connection.
                    self._worker.ended()
                    return
            self.flush(own_connection=True)

    def flush(self, *, own_connection: bool = False) -> int:
        """Mark the collected ids delivered; how many rows that marked."""
        with self._lock:
            ids, self._ids = self._ids, []
        if not ids:
            return 0
        try:
            from .services.outbox import outbox_mark_delivered

            return outbox_mark_delivered(ids=ids)
        except Exception:
            # The events were delivered; unmarked, the relay delivers them once more (at least once).
            logger.warning(
                "could not mark %d outbox events delivered; the relay will", len(ids), exc_info=True
            )
            return 0
        finally:
            if own_connection:
                # The marking thread's own connection: closed, not left open for the process's lifetime.
                connection.close()

    def forget(self) -> None:
        with self._lock:
            self._ids = []


_marks = _DeliveredMarks()


def mark_delivered(pk: int) -> None:
    _marks.add(pk)


def flush_marks() -> int:
    """Mark now what this process delivered (tests; a command about to exit)."""
    return _marks.flush()


def forget_marks() -> None:
    """Drop the ids not marked yet (a test's rows are gone with its database; the thread then ends)."""
    _marks.forget()


# Handlers that only hand an event on (opd.core.events.subscribe(after_response=True): a Celery task to the
# broker, a channel-layer group send) run on one sender thread per process instead of the request that
# committed: a booking answers without waiting for a broker client, a publish and a channel-layer round trip.
# The row is marked delivered once they all succeeded; until then it is undelivered, so an event still
# queued when the process dies is the relay's to deliver (at least once, as ever). A process that exits
# cleanly sends what is queued first. Above this many queued events (a broker that hangs) the request
# sends its own, so the backlog cannot outgrow the relay's grace period unseen.
MAX_QUEUED = 1000

_Item = tuple[int, str, dict[str, Any], list[Callable[..., Any]], str | None]


class _Sender:
    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._items: deque[_Item] = deque()
        self._busy = False  # the thread is sending an item it took
        self._worker = _ProcessThread("outbox-sender", self._run, self.drain)

    def put(self, item: _Item) -> None:
        with self._ready:
            if self._worker.forked():
                self._items, self._busy = deque(), False  # the parent's queue stays the parent's
            inline = len(self._items) >= MAX_QUEUED
            if not inline:
                self._items.append(item)
                self._ready.notify()
                self._worker.ensure_running()
        if inline:
            _send(item)

    def _run(self) -> None:
        from django.db import connections

        from .channel_send import serving_thread

        serving_thread()  # its channel-layer sends go where a request thread's would
        while True:
            with self._ready:
                while not self._items:
                    self._ready.wait()
                item = self._items.popleft()
                self._busy = True
            try:
                _send(item)
            finally:
                with self._ready:
                    self._busy = False
                    idle = not self._items
                    self._ready.notify_all()
                if idle:
                    # A handler that fell back to the database (a broker down) opened this thread's own
                    # connection: closed while idle, not held for the process's lifetime.
                    connections.close_all()

    def forget(self) -> None:
        with self._ready:
            self._items.clear()

    def drain(self) -> int:
        """Wait for the item being sent, then send what is queued, in order, on this thread; how many
        events that was."""
        with self._ready:
            while self._busy:
                self._ready.wait()
            items, self._items = list(self._items), deque()
        for item in items:
            _send(item)
        # What this drain and the thread sent: this may run after the marks' own exit hook.
        flush_marks()
        return len(items)


def _send(item: _Item) -> None:
    from .events import _call

    pk, event, payload, handlers, failure = item
    failure = _call(handlers, event, payload) or failure
    if failure is None:
        mark_delivered(pk)


_sender = _Sender()


def send_after_response(
    pk: int, event: str, payload: dict[str, Any], handlers: list[Callable[..., Any]], failure: str | None
) -> None:
    """Run `handlers` for outbox row `pk` on the sender thread; mark the row delivered if they and the
    handlers run before them (`failure`) all succeeded."""
    _sender.put((pk, event, payload, handlers, failure))


def forget_queued() -> None:
    """Drop the events queued for the sender thread (a test's rows are gone with its database)."""
    _sender.forget()


def drain_sender() -> int:
    """Send what the sender thread has not sent yet, here and now (tests; a command about to exit)."""
    return _sender.drain()
