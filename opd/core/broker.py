"""Celery's broker transport on Redis: kombu's own, publishing through one Redis client per channel.

kombu's Redis channel builds a new redis-py client for every message it publishes (`conn_or_acquire`
without a client): about a millisecond of a booking's CPU here, most of it filling the client's table of
response callbacks. A redis-py client is safe to share between threads (each command takes a connection
from the pool) and its pool reconnects in a forked child, so each channel keeps one. Selected by
CELERY_BROKER_TRANSPORT in the settings for redis:// and rediss:// broker URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    @cached_property
    def _publishing_client(self) -> Any:
        return self._create_client()  # type: ignore[attr-defined]  # not in kombu's stubs

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._publishing_client


class Transport(kombu_redis.Transport):
    Channel = Channel
