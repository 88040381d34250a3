"""Answers cached under versions: read the versions before the database, bump them after the commit.

The mechanism behind the slot-listing read model (scheduling.listing_cache) and the API token check
(opd.core.token_cache). A reader reads (or creates) the versions of what its answer depends on, then
reads the database, then stores the answer under the versions it read first. A writer bumps those
versions only after its transaction commits (`transaction.on_commit`). So a reader that read the rows
before a commit holds a version from before the bump and stores under it, where no reader after the
bump looks: that order is the check-and-set, and an answer is never served after the commit that
changed it.

A version is a fresh random token, never a counter: a version key lost to eviction or a flush comes back
as a new token, so an answer stored under the old one can never be read again.

On Redis a lookup is one round trip (a script reads or creates every version and the answer stored
under them, atomically, so two readers creating a missing version agree on it). With Django's local
memory cache (`make run` bare) the same is done through the cache API.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import connections, transaction

logger = logging.getLogger(__name__)

LOOKUP = """
local parts = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if not value then
    value = ARGV[2] .. i
    redis.call('SET', key, value)
  end
  parts[i] = value
end
local entry = ARGV[1] .. ':' .. table.concat(parts, ':')
return {entry, redis.call('GET', entry)}
"""


def in_application_transaction() -> bool:
    """Inside a transaction the rows read may be this transaction's own uncommitted writes (a rollback
    would leave them cached as a phantom) or an older snapshot: such a read neither reads nor writes the
    cache. (A test case's own wrapping transaction stands for autocommit.)"""
    return any(not getattr(block, "_from_testcase", False) for block in connections["default"].atomic_blocks)


def raw_redis() -> Any:
    """The raw Redis client behind the cache (django-redis), or None (local memory: `make run` bare)."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client.get_client(write=True)


class VersionedCache:
    def __init__(self, namespace: str) -> None:
        # The braces are a Redis Cluster hash tag: the script reads versions and answers together, so
        # they must live in one hash slot.
        self.namespace = namespace
        self._scripts: dict[int, Any] = {}
        self._pending_attribute = f"_versioned_cache_pending_{namespace}"

    def prefix(self) -> str:
        # Named after the database: two databases sharing one Redis (xdist workers, a staging copy)
        # have the same ids for different rows.
        return f"{{{self.namespace}}}:{connections['default'].settings_dict['NAME']}:"

    def lookup(self, keys: list[str], entry_name: str) -> tuple[str, list[str], bytes | None] | None:
        """The current versions of `keys` (missing ones created), the answer's key under them and the
        answer stored there if any; None when the cache cannot be read (the caller reads the database)."""
        fresh = uuid.uuid4().hex + "-"
        prefix = self.prefix()
        try:
            redis = raw_redis()
            if redis is None:
                return self._lookup_in_cache(keys, f"{prefix}{entry_name}", fresh)
            script = self._scripts.get(id(redis))
            if script is None:
                script = self._scripts[id(redis)] = redis.register_script(LOOKUP)
            entry, body = script(
                keys=[cache.make_key(prefix + key) for key in keys],
                args=[cache.make_key(f"{prefix}{entry_name}"), fresh],
            )
            entry = entry.decode()
        except Exception:
            # Redis down, or a value this code did not write: the caller goes to the database.
            logger.exception("%s cache unreadable", self.namespace)
            return None
        return entry, entry.split(":")[-len(keys) :], body

    def _lookup_in_cache(self, keys: list[str], base: str, fresh: str) -> tuple[str, list[str], bytes | None]:
        full = [self.prefix() + key for key in keys]
        found = cache.get_many(full)
        for n, key in enumerate(full, start=1):
            if key not in found:
                cache.add(key, f"{fresh}{n}", timeout=None)  # add: two racing readers agree
        if len(found) < len(full):
            found = cache.get_many(full)
        values = [str(found.get(key, "")) for key in full]
        entry = ":".join([base, *values])
        body = cache.get(entry)
        return entry, values, body if isinstance(body, bytes) else None

    def store(self, entry: str, body: bytes, seconds: float) -> None:
        if seconds < 1:
            return
        try:
            redis = raw_redis()
            if redis is None:
                cache.set(entry, body, timeout=int(seconds))
            else:
                redis.set(entry, body, px=int(seconds * 1000))
        except Exception:
            logger.exception("%s cache not written", self.namespace)

    def bump(self, keys: Iterable[str]) -> None:
        """New versions for `keys` now (callers inside a transaction use bump_on_commit)."""
        wanted = list(keys)
        prefix = self.prefix()
        try:
            redis = raw_redis()
            if redis is None:
                cache.set_many({prefix + key: uuid.uuid4().hex for key in wanted}, timeout=None)
                return
            pipe = redis.pipeline(transaction=False)
            for key in wanted:
                pipe.set(cache.make_key(prefix + key), uuid.uuid4().hex)
            pipe.execute()
        except Exception:
            # The write committed; an answer may be served until it expires (logged to be seen).
            logger.exception("%s versions not bumped: %s", self.namespace, wanted)

    def bump_on_commit(self, keys: Iterable[str]) -> None:
        """Bump these versions once the current transaction commits (at once outside one).

        The keys of one transaction are gathered and go out in one round trip. Every call registers the
        flush (the first to run empties the set), so a flush discarded with a rolled-back savepoint
        loses nothing."""
        connection = connections["default"]
        pending: set[str] = connection.__dict__.setdefault(self._pending_attribute, set())
        pending.update(keys)

        def flush() -> None:
            if pending:
                wanted = list(pending)
                pending.clear()
                self.bump(wanted)

        transaction.on_commit(flush)
