"""Statistics cached per (scope, filters, month), invalidated when a day of that month changes.

Each (clinic, month) has a version token in the cache. Booking, cancelling, rescheduling and every queue
change publish one event each (opd.core.events) carrying the appointment id (and its clinic and day); the
handler (analytics.subscribers) gives that appointment's (clinic, month of its local day) a new token. A cached
month's key holds the tokens of every clinic in its scope, so a change makes the old entry unreachable
and the next read recomputes that month only. Months keep the number of keys a request reads small
(two years of four clinics: 96 versions and 25 entries, not 2,916 and 729), and a month is cheap to
recompute: its closed days come from the stored figures (analytics.summaries). Months whose days are all
closed are kept long; a month with today or later days briefly, because slot generation and other
changes that publish no event also move their figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

if TYPE_CHECKING:
    from .selectors import StatsScope

KEY_VERSION = "a2"  # bump when the cached rows change shape
CLOSED_DAY_SECONDS = 30 * 24 * 3600
OPEN_DAY_SECONDS = 60


def namespace() -> str:
    """Keys name the database too: several databases (tests, benchmarks, a second site) may share one
    Redis, and the same clinic id in two of them is not the same clinic."""
    return f"analytics:{KEY_VERSION}:{connection.settings_dict['NAME']}"


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _month_end(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def version_key(clinic_id: int, day: dt.date, *, space: str | None = None) -> str:
    """The key of the version of (clinic, the month of `day`)."""
    return f"{space or namespace()}:ver:{clinic_id}:{month_of(day):%Y-%m}"


def bump(clinic_id: int, day: dt.date) -> None:
    """Give (clinic, month of `day`) a new token: the time in nanoseconds, never a value an older entry
    was keyed by.

    A missing version reads as 0. Version keys never expire, so only an eviction under memory pressure
    could bring back entries keyed by 0 (those computed before the month's first change); Redis's
    volatile-* and noeviction policies never evict keys without an expiry.
    """
    cache.set(version_key(clinic_id, day), time.time_ns(), timeout=None)


def closed_before() -> dt.date:
    """The first day that may still change as time passes: days before it are over in every zone (the
    day before yesterday in UTC is over from UTC-12 to UTC+14)."""
    return timezone.now().date() - dt.timedelta(days=1)


def _signature(scope: StatsScope, month: dt.date, versions: dict[str, int], space: str) -> str:
    tokens = ".".join(str(versions.get(version_key(c, month, space=space), 0)) for c in scope.clinic_ids)
    if len(tokens) > 64:
        tokens = hashlib.sha256(tokens.encode()).hexdigest()[:24]
    return tokens


def cached_days(
    kind: str,
    scope: StatsScope,
    days: list[dt.date],
    compute: Callable[[dt.date, dt.date], dict[dt.date, dict]],
) -> list[dict]:
    """The rows of `days` (ascending), from the cached months where current; each run of consecutive
    missing months is computed with one call of `compute(first_day, last_day)` and stored per month."""
    if not days:
        return []
    space = namespace()
    months = sorted({month_of(day) for day in days})
    versions = cache.get_many([version_key(c, m, space=space) for m in months for c in scope.clinic_ids])
    prefix = f"{space}:{kind}:{scope.token}"
    keys = {m: f"{prefix}:{m:%Y-%m}:{_signature(scope, m, versions, space)}" for m in months}
    found = cache.get_many(list(keys.values()))
    missing = [m for m in months if keys[m] not in found]
    first_open = closed_before()
    runs: list[list[dt.date]] = []
    for month in missing:
        if runs and month_of(runs[-1][-1] + dt.timedelta(days=32)) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    for run in runs:
        computed = compute(run[0], _month_end(run[-1]))
        closed: dict[str, Any] = {}  # cache key -> the month's rows
        open_: dict[str, Any] = {}
        for month in run:
            chunk = {day: row for day, row in computed.items() if month_of(day) == month}
            (closed if _month_end(month) < first_open else open_)[keys[month]] = chunk
        if closed:
            cache.set_many(closed, timeout=CLOSED_DAY_SECONDS)
        if open_:
            cache.set_many(open_, timeout=OPEN_DAY_SECONDS)
        found.update(closed)
        found.update(open_)
    return [found[keys[month_of(day)]][day] for day in days]


def clear_all() -> None:
    """Forget this database's cached statistics and versions (benchmarks measure the cold path so)."""
    if hasattr(cache, "delete_pattern"):  # django-redis
        cache.delete_pattern(f"{namespace()}:*")
    else:
        cache.clear()
