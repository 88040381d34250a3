"""Answers cached under versions: read the versions before the database, bump them after the commit.

The mechanism behind the slot-listing read model (scheduling.listing_cache) and the API token check
(opd.core.token_cache). A reader reads (or creates) the versions of what its answer depends on, then
reads the database, then stores the answer under the versions it read first. A writer bumps those
versions only after its transaction commits (`transaction.on_commit`). So a reader that read the rows
before a commit holds a version from before the bump and stores under it, where no reader after the
bump looks: that order is the check-and-set, and an answer is never served after the commit that
changed it.

A version is a fresh random token, never a counter: a version key lost to eviction or a flush comes back
as a new token, so an answer stored under the old one can never be read again; versions expire after
VERSION_SECONDS for the same reason, safely.

On Redis a lookup is one round trip (a script reads or creates every version and the answer stored
under them, atomically, so two readers creating a missing version agree on it). A chained lookup reads
two caches in that one round trip when the second's answer belongs to an owner named in the first's
(a patient's slot listing, whose organization is in the token check's entry). With Django's local
memory cache (`make run` bare) the same is done through the cache API.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

from django.core.cache import cache
from django.db import connections, transaction

logger = logging.getLogger(__name__)

LOOKUP = """
local parts = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if not value then
    value = ARGV[2] .. i
    redis.call('SET', key, value, 'EX', ARGV[3])
  end
  parts[i] = value
end
local entry = ARGV[1] .. ':' .. table.concat(parts, ':')
return {entry, redis.call('GET', entry)}
"""

# KEYS: the first cache's versions, then the second's. ARGV: how many keys are the first's, the first
# answer's key, the second answer's key up to its owner, the fresh version's stem, VERSION_SECONDS. The
# owner is the number at `user.organization_id` of the first answer (JSON); without one, the second is not
# looked up.
CHAINED_LOOKUP = """
local function versions(first, last)
  local parts = {}
  for i = first, last do
    local value = redis.call('GET', KEYS[i])
    if not value then
      value = ARGV[4] .. i
      redis.call('SET', KEYS[i], value, 'EX', ARGV[5])
    end
    parts[#parts + 1] = value
  end
  return table.concat(parts, ':')
end
local split = tonumber(ARGV[1])
local entry = ARGV[2] .. ':' .. versions(1, split)
local body = redis.call('GET', entry)
if not body then
  return {entry, false}
end
local ok, rows = pcall(cjson.decode, body)
local owner = ok and type(rows) == 'table' and type(rows['user']) == 'table' and rows['user']['organization_id']
if type(owner) ~= 'number' then
  return {entry, body}
end
owner = string.format('%d', owner)
local second = ARGV[3] .. owner .. ':' .. versions(split + 1, #KEYS)
return {entry, body, owner, second, redis.call('GET', second)}
"""

# How long a version lives once set. An expired version comes back as a new token, like an evicted one (an
# answer under the old one is never read again): a day costs each key one miss a day, and the versions of
# tokens and days nobody asks for any more leave Redis instead of piling up under a no-eviction policy.
VERSION_SECONDS = 24 * 3600

# Every namespace's keys carry this Redis Cluster hash tag: a script reads versions and answers together
# (and a chained lookup two namespaces), so they must live in one hash slot.
HASH_TAG = "{versioned}"


class Found(NamedTuple):
    """A lookup's answer: the key the answer is (to be) stored under, the versions in it, the answer."""

    entry: str
    versions: list[str]
    body: bytes | None


class Chained(NamedTuple):
    """A chained lookup's answer: the first cache's, and the second's for `owner` (None: the first had no
    answer yet, or no owner in it)."""

    first: Found
    owner: int | None
    second: Found | None


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


_SCRIPTS: dict[tuple[int, str], Any] = {}


def _script(redis: Any, source: str) -> Any:
    """The script registered once per client (EVALSHA, loaded again by redis-py if Redis lost it)."""
    script = _SCRIPTS.get((id(redis), source))
    if script is None:
        script = _SCRIPTS[(id(redis), source)] = redis.register_script(source)
    return script


class VersionedCache:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._pending_attribute = f"_versioned_cache_pending_{namespace}"

    def prefix(self) -> str:
        # Named after the database: two databases sharing one Redis (xdist workers, a staging copy)
        # have the same ids for different rows.
        return f"{HASH_TAG}:{self.namespace}:{connections['default'].settings_dict['NAME']}:"

    def lookup(self, keys: list[str], entry_name: str) -> Found | None:
        """The current versions of `keys` (missing ones created), the answer's key under them and the
        answer stored there if any; None when the cache cannot be read (the caller reads the database)."""
        fresh = uuid.uuid4().hex + "-"
        prefix = self.prefix()
        try:
            redis = raw_redis()
            if redis is None:
                return self._lookup_in_cache(keys, f"{prefix}{entry_name}", fresh)
            entry, body = _script(redis, LOOKUP)(
                keys=[cache.make_key(prefix + key) for key in keys],
                args=[cache.make_key(f"{prefix}{entry_name}"), fresh, VERSION_SECONDS],
            )
            entry = entry.decode()
        except Exception:
            # Redis down, or a value this code did not write: the caller goes to the database.
            logger.exception("%s cache unreadable", self.namespace)
            return None
        return Found(entry, entry.split(":")[-len(keys) :], body)

    def lookup_chained(
        self,
        keys: list[str],
        entry_name: str,
        then: VersionedCache,
        then_keys: list[str],
        then_entry_name: str,
    ) -> Chained | None:
        """This cache's lookup and, in the same round trip, `then`'s for the organization named in this
        one's answer: `then`'s answer key is `then_entry_name` followed by that organization's id, as a
        plain `then.lookup(then_keys, then_entry_name + str(owner))` would read it. On Redis only (None
        elsewhere, and when the cache cannot be read: the caller looks each up alone)."""
        redis = raw_redis()
        if redis is None:
            return None
        fresh = uuid.uuid4().hex + "-"
        prefix, then_prefix = self.prefix(), then.prefix()
        try:
            answer = _script(redis, CHAINED_LOOKUP)(
                keys=[cache.make_key(prefix + key) for key in keys]
                + [cache.make_key(then_prefix + key) for key in then_keys],
                args=[
                    len(keys),
                    cache.make_key(f"{prefix}{entry_name}"),
                    cache.make_key(f"{then_prefix}{then_entry_name}"),
                    fresh,
                    VERSION_SECONDS,
                ],
            )
            entry = answer[0].decode()
            first = Found(entry, entry.split(":")[-len(keys) :], answer[1])
            if len(answer) < 5:
                return Chained(first, None, None)
            second = answer[3].decode()
            return Chained(
                first, int(answer[2]), Found(second, second.split(":")[-len(then_keys) :], answer[4])
            )
        except Exception:
            logger.exception("%s cache unreadable", self.namespace)
            return None

    def _lookup_in_cache(self, keys: list[str], base: str, fresh: str) -> Found:
        full = [self.prefix() + key for key in keys]
        found = cache.get_many(full)
        for n, key in enumerate(full, start=1):
            if key not in found:
                cache.add(key, f"{fresh}{n}", timeout=VERSION_SECONDS)  # add: two racing readers agree
        if len(found) < len(full):
            found = cache.get_many(full)
        values = [str(found.get(key, "")) for key in full]
        entry = ":".join([base, *values])
        body = cache.get(entry)
        return Found(entry, values, body if isinstance(body, bytes) else None)

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
                cache.set_many({prefix + key: uuid.uuid4().hex for key in wanted}, timeout=VERSION_SECONDS)
                return
            pipe = redis.pipeline(transaction=False)
            for key in wanted:
                pipe.set(cache.make_key(prefix + key), uuid.uuid4().hex, ex=VERSION_SECONDS)
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
