"""Read replica routing: opted-in reads go to the `replica` alias while it is fresh enough.

Nothing reads from the replica by default: a read inside a request that writes must see that write, and
most requests write something. A view handler opts in with `@replica_view` (GET and HEAD only), a read
inside a handler with `read_on_replica(fn, user_id=...)`; `git grep -e replica_view -e read_on_replica`
lists the opted-in doors. Access decisions stay on the primary: DRF authenticates and checks permissions
before the handler runs. Within an opted-in read, a query goes to the primary all the same when

- the user wrote within REPLICA_STICKY_SECONDS (read-your-writes: ReplicaStickyMiddleware remembers
  each unsafe request per user in the cache; when the cache cannot answer, the user counts as a writer),
- this block wrote, or runs in a transaction on the primary,
- the replica's lag (Seconds_Behind_Master, checked at most once a second per process) is unknown
  (replication stopped or broken) or over REPLICA_MAX_LAG_SECONDS, or the replica does not answer.

Both run the read again on the primary if the replica fails during it: a read that writes nothing can
be repeated, and the user gets an answer instead of a 500.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"
CHECK_EVERY_SECONDS = 1.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class _Reads:
    use_replica: bool
    wrote: bool = False


_reads: contextvars.ContextVar[_Reads | None] = contextvars.ContextVar("opd_replica_reads", default=None)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def sticky_key(user_id: int) -> str:
    return f"replica-sticky:{user_id}"


def remember_write(user_id: int) -> None:
    """The user wrote: their opted-in reads use the primary for REPLICA_STICKY_SECONDS."""
    try:
        cache.set(sticky_key(user_id), 1, timeout=settings.REPLICA_STICKY_SECONDS)
    except Exception as exc:  # Redis down: reads fall back below, since the cache cannot answer
        logger.warning("could not remember a write for replica routing: %s", exc)


def _wrote_recently(user_id: int | None) -> bool:
    if user_id is None:
        return False
    try:
        return cache.get(sticky_key(user_id)) is not None
    except Exception as exc:  # the cache cannot say: the primary is always right
        logger.warning("replica routing could not read the cache: %s", exc)
        return True


class _Health:
    """Whether the replica may serve reads, from SHOW SLAVE STATUS, remembered for a second per process.

    Per process and in memory, not in the shared cache: every process can reach (or not) the replica on
    its own, and the check must work while Redis is down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._usable = False

    def usable(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at >= CHECK_EVERY_SECONDS:
                self._usable = self._check()
                self._checked_at = time.monotonic()
            return self._usable

    def mark_down(self) -> None:
        with self._lock:
            self._usable = False
            self._checked_at = time.monotonic()

    def forget(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    @staticmethod
    def _check() -> bool:
        replica = connections[REPLICA]
        try:
            with replica.cursor() as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                row = cursor.fetchone()
                names = [column[0] for column in cursor.description or ()]
        except Exception as exc:
            # Whatever stops the check (the server down, a refused right, a test forbidding the alias)
            # must not stop the request: the primary answers.
            logger.warning("replica unavailable, reading from the primary: %s", exc)
            with contextlib.suppress(Exception):
                replica.close()
            return False
        if row is None:
            logger.warning(
                "replica database is not replicating (no SHOW SLAVE STATUS); reading from the primary"
            )
            return False
        lag = dict(zip(names, row, strict=False)).get("Seconds_Behind_Master")
        if lag is None:  # a replication thread stopped or broken: how stale it is, nobody knows
            logger.warning("replica lag unknown (replication stopped); reading from the primary")
            return False
        if int(lag) > settings.REPLICA_MAX_LAG_SECONDS:
            logger.warning(
                "replica %ss behind (limit %ss); reading from the primary",
                lag,
                settings.REPLICA_MAX_LAG_SECONDS,
            )
            return False
        return True


health = _Health()


@contextlib.contextmanager
def replica_reads(*, user_id: int | None) -> Iterator[None]:
    """Within the block, reads may go to the replica (see the module's docstring for when they do not)."""
    if not replica_configured():
        yield
        return
    use = not _wrote_recently(user_id) and health.usable()
    token = _reads.set(_Reads(use_replica=use))
    try:
        yield
    finally:
        _reads.reset(token)


def _request_of(args: tuple[Any, ...]) -> HttpRequest | None:
    # A function view's first argument, or a method's second (DRF's Request wraps Django's and has
    # .method and .user too).
    for arg in args[:2]:
        if hasattr(arg, "method") and hasattr(arg, "user"):
            return arg
    return None


def read_on_replica(read: Callable[[], T], *, user_id: int | None) -> T:
    """`read()` with replica reads allowed; if the replica fails during it, `read()` again on the primary.

    Only for reads that write nothing (running them twice must be harmless).
    """
    with replica_reads(user_id=user_id):
        state = _reads.get()
        try:
            return read()
        except DatabaseError as exc:
            if state is None or not state.use_replica:
                raise
            # The replica failed in the middle (stopped, restarted): answer from the primary.
            logger.warning("replica failed during a read, answering from the primary: %s", exc)
            health.mark_down()
            with contextlib.suppress(Exception):
                connections[REPLICA].close()
            state.use_replica = False
            return read()


def replica_view(handler: F) -> F:
    """Let a view handler's reads use the replica on GET and HEAD (decorate the function view, or the
    DRF handler method such as `list` or `get`, so authentication and permissions have read the primary
    already). The handler must write nothing that a second run would repeat (see read_on_replica)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = _request_of(args)
        if request is None or request.method not in SAFE_METHODS or not replica_configured():
            return handler(*args, **kwargs)
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        return read_on_replica(lambda: handler(*args, **kwargs), user_id=user_id)

    return wrapper  # type: ignore[return-value]


class ReplicaRouter:
    """Installed (DATABASE_ROUTERS) only when REPLICA_DATABASE_URL is set."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        state = _reads.get()
        if state is None or not state.use_replica or state.wrote or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return REPLICA

    def db_for_write(self, model: type, **hints: Any) -> str:
        state = _reads.get()
        if state is not None:
            state.wrote = True  # what this block reads next must see this write
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same rows on both aliases

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY  # the replica gets its schema through replication


class ReplicaStickyMiddleware:
    """After an unsafe request (POST, PUT, PATCH, DELETE) by a signed-in user, remember them as a writer
    for REPLICA_STICKY_SECONDS, so their next opted-in reads see what they wrote. Placed after the
    authentication middleware; DRF's token users are on request.user by the time the answer leaves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and replica_configured():
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                remember_write(user.pk)
        return response
