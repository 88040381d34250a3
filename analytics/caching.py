"""Statistics cached per (scope, filters, day), invalidated when the day changes.

Each (clinic, day) has a version token in the cache. Booking, cancelling, rescheduling and every queue
change publish an event (opd.core.events) carrying the appointment id; the handler (subscribed in
AnalyticsConfig.ready) gives that appointment's (clinic, local day) a new token. A cached day's key holds
the tokens of every clinic in its scope, so a change makes the old entry unreachable and the next read
recomputes only the days that changed. Closed days are kept long; today and later days briefly, because
slot generation and other changes that publish no event also move their figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

if TYPE_CHECKING:
    from .selectors import StatsScope

KEY_VERSION = "a1"  # bump when the cached rows change shape
CLOSED_DAY_SECONDS = 30 * 24 * 3600
OPEN_DAY_SECONDS = 60
# Figures whose changes publish no event (care notes can be written or re-categorised later) are kept
# a quarter of an hour even for closed days.
UNEVENTED_CLOSED_DAY_SECONDS = 15 * 60


def namespace() -> str:
    """Keys name the database too: several databases (tests, benchmarks, a second site) may share one
    Redis, and the same clinic id in two of them is not the same clinic."""
    return f"analytics:{KEY_VERSION}:{connection.settings_dict['NAME']}"


def version_key(clinic_id: int, day: dt.date) -> str:
    return f"{namespace()}:ver:{clinic_id}:{day.isoformat()}"


def bump(clinic_id: int, day: dt.date) -> None:
    """Give (clinic, day) a new token: the time in nanoseconds, never a value an older entry was keyed by.

    A missing version reads as 0. Version keys never expire, so only an eviction under memory pressure
    could bring back entries keyed by 0 (those computed before the day's first change); Redis's volatile-*
    and noeviction policies never evict keys without an expiry.
    """
    cache.set(version_key(clinic_id, day), time.time_ns(), timeout=None)


def closed_before() -> dt.date:
    """The first day that may still change as time passes: days before it are over in every zone (the
    day before yesterday in UTC is over from UTC-12 to UTC+14)."""
    return timezone.now().date() - dt.timedelta(days=1)


def _signature(scope: StatsScope, day: dt.date, versions: dict[str, int]) -> str:
    tokens = ".".join(str(versions.get(version_key(c, day), 0)) for c in scope.clinic_ids)
    if len(tokens) > 64:
        tokens = hashlib.sha256(tokens.encode()).hexdigest()[:24]
    return tokens


def cached_days(
    kind: str,
    scope: StatsScope,
    days: list[dt.date],
    compute: Callable[[dt.date, dt.date], dict[dt.date, dict]],
    *,
    closed_seconds: int = CLOSED_DAY_SECONDS,
) -> list[dict]:
    """The rows of `days`, from the cache where current; the missing ones are computed with one call of
    `compute(first_missing, last_missing)` and stored."""
    if not days:
        return []
    versions = cache.get_many([version_key(c, d) for d in days for c in scope.clinic_ids])
    prefix = f"{namespace()}:{kind}:{scope.token}"
    keys = {day: f"{prefix}:{day.isoformat()}:{_signature(scope, day, versions)}" for day in days}
    found = cache.get_many(list(keys.values()))
    missing = [day for day in days if keys[day] not in found]
    if missing:
        computed = compute(min(missing), max(missing))
        first_open = closed_before()
        closed = {keys[d]: computed[d] for d in missing if d < first_open}
        open_ = {keys[d]: computed[d] for d in missing if d >= first_open}
        if closed:
            cache.set_many(closed, timeout=closed_seconds)
        if open_:
            cache.set_many(open_, timeout=OPEN_DAY_SECONDS)
        found.update({keys[d]: computed[d] for d in missing})
    return [found[keys[day]] for day in days]


def on_appointment_event(*, appointment_id: int, previous_slot_id: int | None = None, **_: object) -> None:
    """Event handler: the appointment's (clinic, day) changed; after a reschedule, the old slot's too.
    Stored figures of a closed day are marked stale as well (analytics.summaries)."""
    from scheduling.models import Appointment, Slot

    from .summaries import daily_summaries_mark_changed

    changed = []
    row = Appointment.objects.filter(pk=appointment_id).values_list("clinic_id", "slot__date").first()
    if row:
        changed.append(row)
    if previous_slot_id:
        old = Slot.objects.filter(pk=previous_slot_id).values_list("clinic_id", "date").first()
        if old:
            changed.append(old)
    for clinic_id, day in changed:
        bump(clinic_id, day)
    daily_summaries_mark_changed(appointment_id=appointment_id, days=changed)


def clear_all() -> None:
    """Forget this database's cached statistics and versions (benchmarks measure the cold path so)."""
    if hasattr(cache, "delete_pattern"):  # django-redis
        cache.delete_pattern(f"{namespace()}:*")
    else:
        cache.clear()
