"""Exactly one beat in effect, however many are started: a leader lock in Redis.

Every node of a cluster may run `celery beat` (so losing a node does not stop the periodic jobs), but
only the beat holding the lock sends anything. The lock is a Redis key set with NX and a TTL; the leader
renews it on every tick (ticks are at most a third of the TTL apart), the others ask for it on every tick
and send nothing meanwhile. A leader that dies (SIGKILL, machine lost) stops renewing, the key expires
after the TTL, and a standby takes over.

The leader writes each entry's last run to the database after every send (`sync_every_tasks = 1`, instead
of every three minutes), and a beat that becomes leader re-reads the schedule from the database before
sending: so the new leader continues where the old one stopped, and a period already sent is not sent
again by the successor. Without Redis (the embedded default, one beat) there is nothing to elect: it
behaves as django-celery-beat's DatabaseScheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# Renew only if the key still holds our token: a leader paused past the TTL must not extend a lock that
# a standby has taken since; release the same way.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class LeaderDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ttl = float(settings.OPD_BEAT_LEADER_TTL_SECONDS)
        self._key: str = settings.OPD_BEAT_LEADER_KEY
        # Who holds the lock is readable in Redis (GET key) when an operator wonders which beat leads.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None
        self._leading = self._redis is None
        # Until when (monotonic clock) the lock is ours for sure: the last renewal plus the TTL.
        self._lease_until = 0.0
        super().__init__(*args, **kwargs)
        # The last run of every entry reaches the database after each send, for a successor to read.
        self.sync_every_tasks = 1

    def setup_schedule(self) -> None:
        # Writing CELERY_BEAT_SCHEDULE into the tables (a full save of each row) is the leader's job: a
        # standby starting beside a running leader would otherwise rewrite rows the leader is updating,
        # setting a just-sent task's last run back, and the leader would send it again.
        if self._leading:
            super().setup_schedule()

    def _still_leading(self) -> bool:
        if self._redis is None:
            return True
        ttl_ms = int(self._ttl * 1000)
        asked = time.monotonic()
        try:
            if self._leading:
                held = bool(self._redis.eval(_RENEW, 1, self._key, self._token, ttl_ms))
            else:
                held = bool(self._redis.set(self._key, self._token, nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            # Redis is also the broker: nothing could be sent anyway. Stand by until it answers again.
            logger.warning("beat: leader lock unreachable (%s); sending nothing meanwhile", exc)
            held = False
        if held and not self._leading:
            logger.info(
                "beat: leader lock %s taken by %s; this beat sends the periodic tasks", self._key, self._token
            )
            # Where the previous leader stopped is in the database; the in-memory schedule is stale.
            super().setup_schedule()
            self._schedule = self.all_as_schedule()
            self._heap: list[Any] = []
            self._heap_invalidated = True
        elif self._leading and not held:
            logger.warning("beat: leader lock %s lost; standing by", self._key)
        self._leading = held
        if held:
            self._lease_until = asked + self._ttl
        return held

    def tick(self, *args: Any, **kwargs: Any) -> float:
        # Renewed at least three times per TTL, so a leader's slow tick cannot let the lock lapse.
        longest = self._ttl / 3
        if not self._still_leading():
            return float(min(self.max_interval, longest))
        return float(min(super().tick(*args, **kwargs), longest))

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        # A leader stalled between its renewal and this send (a long GC, a starved machine) may have lost
        # the lock to a standby meanwhile; the send is skipped then rather than doubled. The period is
        # recorded as run, so the skip loses one run: every periodic task here claims its work, and the
        # next period catches up.
        if self._redis is not None and time.monotonic() > self._lease_until - self._ttl / 6:
            logger.warning("beat: leader lock may have lapsed; not sending %s this period", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        super().close()
        if self._redis is not None and self._leading:
            # A clean stop hands over at once instead of after the TTL.
            try:
                self._redis.eval(_RELEASE, 1, self._key, self._token)
            except redis.RedisError:
                logger.warning("beat: could not release the leader lock; it expires by itself")
            self._leading = False
