"""The API token check answered from Redis while nothing it depends on has changed (issue 18).

Every API request checks its token: the token's row (revoked? expired? issued with a second factor?),
its person's (active? role? superuser?) and their organization's (does it require a second factor?).
On MariaDB that is one query and, with persistent connections, the health-check ping before it: a third
of a cached slot listing's time. Here the three rows are kept in Redis under versions
(opd.core.versioned_cache: versions read before the database, bumped after the commit), so an answer is
never served after the commit that changed it:

- `t:<digest>`, one token's version: bumped when the token's row is saved or deleted, and for every live
  token of a person whose row is saved (a role, an activation, a name) or deleted;
- `all`: bumped by any organization's save or delete and by any bulk update of tokens, people or
  organizations (revoking one or all of a person's tokens, `QuerySet.update` anywhere): rare writes,
  after which every client's next request reads the database once.

The expiry is checked on every request from the cached row, so a token still ends at its `expires_at`.
An entry lives OPD_API_TOKEN_CACHE_SECONDS at most (and never past its token's expiry): a bump lost to a
Redis outage at the moment of a revocation heals within that time. The password hash is not kept (the
field stays deferred on the cached person: it loads if something asks for it).

Only on Redis: with Django's local-memory cache (`make run` bare, one process per cache) every request
reads the database, as it does when OPD_API_TOKEN_CACHE_SECONDS is 0.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .versioned_cache import Chained, VersionedCache, in_application_transaction, raw_redis

ALL = "all"
_versions = VersionedCache("api-token-v1")

# Columns no authorization decision reads: changing them bumps nothing (a sign-in's last_login, a
# token's last_used_at, which the check itself writes once a minute).
UNCHECKED_USER_FIELDS = frozenset({"last_login"})


def enabled() -> bool:
    return settings.OPD_API_TOKEN_CACHE_SECONDS > 0 and raw_redis() is not None


def token_key(digest: str) -> str:
    return f"t:{digest}"


def lookup(digest: str) -> tuple[str, bytes | None] | None:
    """The entry's key under the current versions and what is stored there, as stored (`rows` of
    `store`, JSON; None: not yet); None when the cache is off or unreadable (the check reads the database
    and stores nothing)."""
    if not enabled() or in_application_transaction():
        return None
    found = _versions.lookup([ALL, token_key(digest)], f"e:{digest}")
    if found is None:
        return None
    entry, _versions_read, body = found
    return entry, body


def lookup_with(
    digest: str, then: VersionedCache, then_keys: list[str], then_entry_name: str
) -> Chained | None:
    """This token's lookup and, in the same round trip, `then`'s answer for the organization of the
    token's person, as read from the token's cached entry (VersionedCache.lookup_chained). The first
    part is what `lookup` would answer; None where `lookup` would be None or Redis could not be read."""
    if not enabled() or in_application_transaction():
        return None
    return _versions.lookup_chained([ALL, token_key(digest)], f"e:{digest}", then, then_keys, then_entry_name)


def store(entry: str, rows: dict[str, Any], expires_at: dt.datetime) -> None:
    seconds = min(float(settings.OPD_API_TOKEN_CACHE_SECONDS), (expires_at - timezone.now()).total_seconds())
    _versions.store(entry, json.dumps(rows, default=_encode).encode(), seconds)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()  # full precision: last_used_at is compared to the row's own value
    raise TypeError(f"not kept in the token cache: {type(value).__name__}")


def forget_tokens(digests: list[str]) -> None:
    if digests and enabled():
        _versions.bump_on_commit([token_key(digest) for digest in digests])


def forget_all() -> None:
    if enabled():
        _versions.bump_on_commit([ALL])


class AuthStateQuerySet(models.QuerySet):
    """The queryset of the rows a token check reads (tokens, people, organizations): a bulk update
    bumps every cached check, because it does not say which rows it changed."""

    def update(self, **kwargs: Any) -> int:
        count = super().update(**kwargs)
        if count:
            forget_all()
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def update_unchecked(self, **kwargs: Any) -> int:
        """An update of columns no authorization decision reads (a token's last_used_at): no bump."""
        return super().update(**kwargs)

    update_unchecked.alters_data = True  # type: ignore[attr-defined]


# Signal receivers (CoreConfig.ready()).


def on_token_changed(sender: Any, instance: Any, created: bool = False, **_: Any) -> None:
    if not created:
        forget_tokens([instance.digest])


def on_user_changed(
    sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **_: Any
) -> None:
    if created or not enabled():
        return
    if update_fields is not None and set(update_fields) <= UNCHECKED_USER_FIELDS:
        return
    from .models import ApiToken

    live = ApiToken.objects.filter(
        user_id=instance.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    forget_tokens(list(live.values_list("digest", flat=True)))


def on_organization_changed(sender: Any, instance: Any, created: bool = False, **_: Any) -> None:
    if not created:
        forget_all()
