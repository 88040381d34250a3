"""A patient's slot listing, answered from the cache while nothing it shows has changed (issue 18).

What a listing shows depends on slots (seats, open or closed) and on the catalog around them (clinics,
departments, doctors' approval and names). Each has a version in the cache:

- `dd:<doctor>:<day>`: one doctor's slots on one day (clinic local), bumped by every seat taken or
  freed (the booking service: booking, cancellation, move) and every slot save of that doctor-day;
- `c:<clinic>`: any slot of the clinic, bumped by the same changes;
- `catalog`: everything else (clinics, departments, doctors, their names, bulk slot changes), bumped
  by their saves and by slot generation.

A listing's answer is stored under the versions it read *before* reading the database, and versions are
bumped only *after* the writing transaction commits (opd.core.versioned_cache, which says why that order
is the check-and-set); the window between a commit and its bump lies inside the writer's own request,
before anyone has been told the write happened.

Only patients' first pages are kept: their scope is their organization (no membership to re-check), and
their rows only ever leave a listing as time passes (future, open slots), so an answer expires when its
earliest slot starts. The token is still checked on every request (revocation stays immediate); a
patient's repeated listing reads the token check's entry and its own answer in one round trip
(lookup_with_token), the answer named after the organization found in that entry and used only once the
check confirms it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from django.core.cache import cache

from opd.core import token_cache
from opd.core.versioned_cache import Chained, Found, VersionedCache

CATALOG = "catalog"
# A doctor-day listing may span this many days; longer ranges go to the database each time.
MAX_DAYS = 31
# An answer lives at most this long even if nothing changes (a bump lost to a Redis outage heals).
MAX_SECONDS = 300


# "v2": the raw values of the script's keys, not the pickled ones of Django's cache API that an earlier
# release kept under the same names.
_versions = VersionedCache("slot-listing-v2")
prefix = _versions.prefix
bump_on_commit = _versions.bump_on_commit


def doctor_day_key(doctor_id: int, day: dt.date) -> str:
    return f"dd:{doctor_id}:{day.isoformat()}"


def clinic_key(clinic_id: int) -> str:
    return f"c:{clinic_id}"


def slot_changed(*, doctor_id: int, day: dt.date, clinic_id: int) -> None:
    bump_on_commit([doctor_day_key(doctor_id, day), clinic_key(clinic_id)])


def catalog_changed() -> None:
    bump_on_commit([CATALOG])


def entry_name(parts: Mapping[str, Any]) -> str:
    """An answer's name up to its organization's id, which ends it: what the listing shows is the request
    (`parts`) seen from one organization."""
    digest = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()
    return f"entry:{digest}:o"


def lookup(keys: list[str], parts: Mapping[str, Any], organization_id: int) -> Found | None:
    """The current versions of `keys` (missing ones created), the answer's key under them and the
    answer stored there if any; None when the cache cannot be read (the listing goes to the database).

    The versions are read before the caller reads the database: see the module's docstring."""
    return _versions.lookup(keys, f"{entry_name(parts)}{organization_id}")


def lookup_with_token(token_digest: str, keys: list[str], parts: Mapping[str, Any]) -> Chained | None:
    """The token check's cache lookup and, in the same round trip, this listing's for the organization
    of the token's person (the second part is what `lookup` would answer for it): a patient's repeated
    listing is one round trip to Redis instead of two. None: look each up alone."""
    return token_cache.lookup_with(token_digest, _versions, keys, entry_name(parts))


def clear_answers() -> None:
    """Forget every stored listing of this database (the versions stay): the benchmark times a first
    answer so."""
    if hasattr(cache, "delete_pattern"):  # django-redis
        cache.delete_pattern(f"{prefix()}entry:*")
    else:
        cache.clear()


def store(entry: str, body: bytes, *, earliest_start: dt.datetime | None, now: dt.datetime) -> None:
    """Keep an answer until its earliest slot starts (it leaves the listing then), MAX_SECONDS at most."""
    seconds = float(MAX_SECONDS)
    if earliest_start is not None:
        seconds = min(seconds, (earliest_start - now).total_seconds())
    _versions.store(entry, body, seconds)


def on_redelivered_appointment_event(
    *,
    doctor_id: int,
    clinic_id: int,
    day: dt.date,
    previous_slot_id: int | None = None,
    **_: Any,
) -> None:
    """A booking, cancellation or move whose process died between its commit and its bump (the relay
    delivers its event): bump now what the bump would have. A move's previous doctor-day is its old
    slot's."""
    from .models import Slot

    keys = [doctor_day_key(doctor_id, day), clinic_key(clinic_id)]  # the outbox gives dates back as dates
    if previous_slot_id is not None:
        old = Slot.objects.filter(pk=previous_slot_id).values("doctor_id", "date", "clinic_id").first()
        if old is not None:
            keys += [doctor_day_key(old["doctor_id"], old["date"]), clinic_key(old["clinic_id"])]
    _versions.bump(keys)


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
