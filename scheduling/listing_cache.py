"""A patient's slot listing, answered from the cache while nothing it shows has changed (issue 18).

What a listing shows depends on slots (seats, open or closed) and on the catalog around them (clinics,
departments, doctors' approval and names). Each has a version in the cache:

- `dd:<doctor>:<day>`: one doctor's slots on one day (clinic local), bumped by every seat taken or
  freed (the booking service: booking, cancellation, move) and every slot save of that doctor-day;
- `c:<clinic>`: any slot of the clinic, bumped by the same changes;
- `catalog`: everything else (clinics, departments, doctors, their names, bulk slot changes), bumped
  by their saves and by slot generation.

A version is a fresh random token, never a counter: a version key lost to eviction or a flush comes back
as a new token, so an answer stored under the old one can never be read again.

A listing's answer is stored under the versions it read *before* reading the database, and versions are
bumped only *after* the writing transaction commits (`transaction.on_commit`): a reader that read the
rows before a commit therefore holds the version from before the bump and stores under it, where no
reader after the bump looks. That order is the check-and-set; the window between a commit and its bump
lies inside the writer's own request, before anyone has been told the write happened.

Only patients' first pages are kept: their scope is their organization (no membership to re-check), and
their rows only ever leave a listing as time passes (future, open slots), so an answer expires when its
earliest slot starts. The token is still checked on every request (revocation stays immediate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache import cache
from django.db import connections, transaction

logger = logging.getLogger(__name__)

CATALOG = "catalog"
# A doctor-day listing may span this many days; longer ranges go to the database each time.
MAX_DAYS = 31
# An answer lives at most this long even if nothing changes (a bump lost to a Redis outage heals).
MAX_SECONDS = 300


def prefix() -> str:
    # Named after the database: two databases sharing one Redis (xdist workers, a staging copy) have
    # the same ids for different doctors.
    # "v2": the raw values of the script's keys, not the pickled ones of Django's cache API that an
    # earlier release kept under the same names. The braces are a Redis Cluster hash tag: the script
    # reads versions and answers together, so they must live in one hash slot.
    return f"{{slot-listing-v2}}:{connections['default'].settings_dict['NAME']}:"


def doctor_day_key(doctor_id: int, day: dt.date) -> str:
    return f"dd:{doctor_id}:{day.isoformat()}"


def clinic_key(clinic_id: int) -> str:
    return f"c:{clinic_id}"


# One round trip for a listing on Redis: read (or create) each version and the answer stored under them.
# Atomic, so two readers creating a missing version agree on it.
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
_scripts: dict[int, Any] = {}


def _redis() -> Any:
    """The raw Redis client behind the cache (django-redis), or None (local memory: `make run` bare)."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        return None
    return client.get_client(write=True)


def _bump(keys: Iterable[str]) -> None:
    wanted = list(keys)
    try:
        redis = _redis()
        if redis is None:
            cache.set_many({prefix() + key: uuid.uuid4().hex for key in wanted}, timeout=None)
            return
        pipe = redis.pipeline(transaction=False)
        for key in wanted:
            pipe.set(cache.make_key(prefix() + key), uuid.uuid4().hex)
        pipe.execute()
    except Exception:
        # The write committed; a listing may show the old state until MAX_SECONDS (logged to be seen).
        logger.exception("slot listing versions not bumped: %s", wanted)


def bump_on_commit(keys: Iterable[str]) -> None:
    """Bump these versions once the current transaction commits (at once outside one).

    A booking announces its slot more than once (the seat count, the slot's save); the keys of one
    transaction are gathered and go out in one round trip. Every call registers the flush (the first to
    run empties the set), so a flush discarded with a rolled-back savepoint loses nothing."""
    connection = connections["default"]
    pending: set[str] = connection.__dict__.setdefault("_slot_listing_pending", set())
    pending.update(keys)

    def flush() -> None:
        if pending:
            wanted = list(pending)
            pending.clear()
            _bump(wanted)

    transaction.on_commit(flush)


def slot_changed(*, doctor_id: int, day: dt.date, clinic_id: int) -> None:
    bump_on_commit([doctor_day_key(doctor_id, day), clinic_key(clinic_id)])


def catalog_changed() -> None:
    bump_on_commit([CATALOG])


def in_application_transaction() -> bool:
    """Inside a transaction the rows read may be this transaction's own uncommitted writes (a rollback
    would leave them cached as a phantom) or an older snapshot: such a listing neither reads nor
    writes the cache. (A test case's own wrapping transaction stands for autocommit.)"""
    return any(not getattr(block, "_from_testcase", False) for block in connections["default"].atomic_blocks)


def lookup(keys: list[str], parts: Mapping[str, Any]) -> tuple[str, list[str], bytes | None] | None:
    """The current versions of `keys` (missing ones created), the answer's key under them and the
    answer stored there if any; None when the cache cannot be read (the listing goes to the database).

    The versions are read before the caller reads the database: see the module's docstring."""
    digest = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()
    fresh = uuid.uuid4().hex + "-"
    try:
        redis = _redis()
        if redis is None:
            return _lookup_in_cache(keys, f"{prefix()}entry:{digest}", fresh)
        script = _scripts.get(id(redis))
        if script is None:
            script = _scripts[id(redis)] = redis.register_script(LOOKUP)
        entry, body = script(
            keys=[cache.make_key(prefix() + key) for key in keys],
            args=[cache.make_key(f"{prefix()}entry:{digest}"), fresh],
        )
        entry = entry.decode()
    except Exception:
        # Redis down, or a value this code did not write: the listing goes to the database.
        logger.exception("slot listing cache unreadable")
        return None
    return entry, entry.split(":")[-len(keys) :], body


def _lookup_in_cache(keys: list[str], base: str, fresh: str) -> tuple[str, list[str], bytes | None]:
    full = [prefix() + key for key in keys]
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


def store(entry: str, body: bytes, *, earliest_start: dt.datetime | None, now: dt.datetime) -> None:
    """Keep an answer until its earliest slot starts (it leaves the listing then), MAX_SECONDS at most."""
    seconds = float(MAX_SECONDS)
    if earliest_start is not None:
        seconds = min(seconds, (earliest_start - now).total_seconds())
    if seconds < 1:
        return
    try:
        redis = _redis()
        if redis is None:
            cache.set(entry, body, timeout=int(seconds))
        else:
            redis.set(entry, body, px=int(seconds * 1000))
    except Exception:
        logger.exception("slot listing cache not written")


# Signal receivers (SchedulingConfig.ready()).


def on_slot_saved(sender: Any, instance: Any, **_: Any) -> None:
    # A slot saved by any door (the booking service's seat count, the admin). Deferred fields would
    # cost a query each: a slot loaded without them bumps the catalog instead.
    loaded = instance.__dict__
    if all(name in loaded for name in ("doctor_id", "date", "clinic_id")):
        slot_changed(doctor_id=loaded["doctor_id"], day=loaded["date"], clinic_id=loaded["clinic_id"])
    else:
        catalog_changed()


def on_catalog_saved(sender: Any, instance: Any = None, update_fields: Any = None, **_: Any) -> None:
    catalog_changed()


# The user fields a listing shows (a doctor's name); a sign-in's last_login is not one.
USER_FIELDS = frozenset({"first_name", "last_name", "username"})


def on_user_saved(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if update_fields is not None and not USER_FIELDS.intersection(update_fields):
        return
    if getattr(instance, "role", None) == "patient":
        return
    catalog_changed()
