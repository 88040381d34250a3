"""API tokens (one per sign-in, expiring, revocable) and single-use websocket tickets.

A token is issued by signing in (`POST /api/v1/auth/token/`), lives `OPD_TOKEN_TTL_HOURS`, and ends
earlier when its owner logs out with it, revokes it, or when the owner's password changes or the account
is deactivated (those services revoke every token of the person). Revoked tokens keep their row (who
signed in from where, and until when) with `revoked_at` set.

A websocket ticket lets a client without the session cookie open a socket without putting a long-lived
credential in the URL, where access logs would keep it: an authenticated POST gets a random ticket that
the cache holds for `OPD_WS_TICKET_SECONDS`, and the first connection that presents it consumes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from .. import token_cache
from ..audit import audit
from ..db import ColumnLoader, ModelT, column_of, columns_sql, instance_from_json
from ..models import ApiToken, Organization, User
from ..tokens import PREFIX_LENGTH, digest, new_key

# last_used_at is a hint for the person reading their token list, not an access log: writing it on every
# request would turn each API read into a write, so it moves at most once a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
TICKET_CACHE_PREFIX = "ws-ticket:"
NAME_LENGTH = ApiToken._meta.get_field("name").max_length or 200


class TokenRefused(Exception):
    """The key opens nothing; the message says why, for the 401."""


def token_issue(*, user: User, name: str = "", second_factor: bool = False) -> tuple[ApiToken, str]:
    """A new token for a person who has just proven who they are (`second_factor`: with a code as well
    as the password). Returns the row and the key, which is not stored anywhere: the caller hands it to
    the client once.

    Not written to the audit trail: the row itself records the sign-in (who, when, which client) and is
    kept after revocation. Signing in counts as its first use."""
    key = new_key()
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        digest=digest(key),
        prefix=key[:PREFIX_LENGTH],
        name=name[:NAME_LENGTH],
        expires_at=now + dt.timedelta(hours=settings.OPD_TOKEN_TTL_HOURS),
        last_used_at=now,
        second_factor=second_factor,
    )
    return token, key


def token_use(*, key: str, cached: tuple[str, str, bytes | None] | None = None) -> ApiToken:
    """The live token with this key (its user loaded), noting when it was last used.

    `cached`: a token cache lookup the caller has done already, with something else in the same round
    trip (a patient's slot listing): the digest it was for, the entry's key and body. Used only if it
    is this key's.

    Raises TokenRefused for an unknown, revoked or expired key and for an inactive user's."""
    key_digest = digest(key)
    found = cached[1:] if cached is not None and cached[0] == key_digest else None
    token, entry = _token_with_user(key_digest, found)
    if token is None:
        raise TokenRefused("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused("Token revoked.")
    if token.expires_at <= now:
        raise TokenRefused("Token expired.")
    if not token.user.is_active:
        raise TokenRefused("User inactive or deleted.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests of one client write it once. Not a change any check
        # depends on: the cached check is kept, with the new time, instead of being dropped.
        ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update_unchecked(
            last_used_at=now
        )
        token.last_used_at = now
        if entry is not None:
            token_cache.store(entry, _cached_rows(token), token.expires_at)
    return token


_TOKEN = ColumnLoader(ApiToken, ApiToken._meta.concrete_fields)
_USER = ColumnLoader(User, User._meta.concrete_fields)
_ORGANIZATION = ColumnLoader(Organization, Organization._meta.concrete_fields)
# What the token cache keeps of a person: not the password hash (the field stays deferred).
_CACHED_USER_FIELDS = [f for f in User._meta.concrete_fields if f.attname != "password"]


@functools.cache
def _token_lookup_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    token, user, org = ApiToken._meta, User._meta, Organization._meta

    def column(meta: Any, name: str) -> str:
        return qn(column_of(meta.get_field(name)))

    # Every name comes from the models' metadata; the digest is a parameter. The columns are the loaders'
    # own fields, in their order, so the row splits where _token_from_database expects.
    return (
        f"SELECT {columns_sql(_TOKEN.fields, 't')}, {columns_sql(_USER.fields, 'u')}, "  # noqa: S608
        f"{columns_sql(_ORGANIZATION.fields, 'o')} "
        f"FROM {qn(token.db_table)} t INNER JOIN {qn(user.db_table)} u ON u.{column(user, 'id')} = "
        f"t.{column(token, 'user')} "
        f"LEFT JOIN {qn(org.db_table)} o ON o.{column(org, 'id')} = u.{column(user, 'organization')} "
        f"WHERE t.{column(token, 'digest')} = %s"
    )


def _token_with_user(
    token_digest: str, found: tuple[str, bytes | None] | None = None
) -> tuple[ApiToken | None, str | None]:
    """The token with this digest, its user and the user's organization loaded, and the key of its entry
    in the token cache (None: not cached).

    From opd.core.token_cache while nothing the check depends on has changed; otherwise one statement
    on the primary (a revocation is seen at once, never through a lagging replica), kept for the next
    request under the versions read before it."""
    if found is None:
        found = token_cache.lookup(token_digest)
    if found is not None and found[1] is not None:
        return _from_cached_body(found[1]), found[0]
    token = _token_from_database(token_digest)
    if token is None or found is None:
        return token, None
    token_cache.store(found[0], _cached_rows(token), token.expires_at)
    return token, found[0]


def _token_from_database(token_digest: str) -> ApiToken | None:
    # The ORM's select_related spent about 0.8 ms per request compiling the same query and building the
    # rows; this is the same join, written once, built into the same instances (every concrete field
    # loaded, so nothing loads later).
    with connection.cursor() as cursor:
        cursor.execute(_token_lookup_sql(connection.vendor), [token_digest])
        row = cursor.fetchone()
    if row is None:
        return None
    n_token, n_user = len(_TOKEN.fields), len(_USER.fields)
    token = _TOKEN.load(row[:n_token])
    user = _USER.load(row[n_token : n_token + n_user])
    org_values = row[n_token + n_user :]
    if org_values[0] is not None:
        user.organization = _ORGANIZATION.load(org_values)
    token.user = user
    return cast(ApiToken, token)


def _cached_rows(token: ApiToken) -> dict[str, Any]:
    user = token.user
    organization = user.organization if user.organization_id is not None else None
    return {
        "token": {f.attname: getattr(token, f.attname) for f in _TOKEN.fields},
        "user": {f.attname: getattr(user, f.attname) for f in _CACHED_USER_FIELDS},
        "organization": None
        if organization is None
        else {f.attname: getattr(organization, f.attname) for f in _ORGANIZATION.fields},
    }


def _from_cached_body(body: bytes) -> ApiToken:
    """The token, its person and organization of a cached entry: copies of instances decoded once per
    process for each entry body (decoding them took about half of a cached check's own time), so no
    request shares an instance with another (request threads of one process run side by side)."""
    prototype = _decoded(body)
    token = _copy(prototype)
    token.user = user = _copy(prototype.user)
    if user.organization_id is not None:
        user.organization = _copy(cast(Organization, prototype.user.organization))
    return token


@functools.lru_cache(maxsize=512)
def _decoded(body: bytes) -> ApiToken:
    # Keyed by the body itself: any change the check depends on (a revocation, a person's role, the time
    # of last use) is a different body, or no body under the new versions at all.
    return _from_cached_rows(json.loads(body))


def _copy(instance: ModelT) -> ModelT:
    """A shallow copy with its own model state and no related instances (values are immutable here)."""
    clone = object.__new__(type(instance))
    clone.__dict__.update(instance.__dict__)
    state = clone._state = ModelState()
    state.db, state.adding = instance._state.db, False
    return clone


def _from_cached_rows(rows: dict[str, Any]) -> ApiToken:
    token = instance_from_json(ApiToken, _TOKEN.fields, rows["token"])
    user = instance_from_json(User, _CACHED_USER_FIELDS, rows["user"])
    if rows["organization"] is not None:
        user.organization = instance_from_json(Organization, _ORGANIZATION.fields, rows["organization"])
    token.user = user
    return token


def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """End one token now. Revoking a revoked or expired token changes nothing and is not an error."""
    now = timezone.now()
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            token.revoked_at = now
            audit(
                actor=actor,
                action="token.revoked",
                obj=token,
                organization_id=token.user.organization_id,
                prefix=token.prefix,
            )
    return token


def tokens_revoke_all(*, actor: User | None, user: User, reason: str) -> int:
    """End every live token of `user` (logout everywhere, a new password, a closed account); audited
    with the reason and how many there were. Returns that number."""
    now = timezone.now()
    with transaction.atomic():
        count = ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).update(
            revoked_at=now
        )
        if count:
            audit(
                actor=actor,
                action="token.revoked_all",
                obj=user,
                organization_id=user.organization_id,
                reason=reason,
                count=count,
            )
    return count


def ws_ticket_issue(*, user: User) -> tuple[str, dt.datetime]:
    """A single-use ticket for one websocket connection, valid for OPD_WS_TICKET_SECONDS. Kept in the
    cache under its digest, so the cache holds nothing a client could present."""
    ticket = new_key()
    seconds = settings.OPD_WS_TICKET_SECONDS
    expires_at = timezone.now() + dt.timedelta(seconds=seconds)
    # The cache's own expiry clears the entry; the stored time is the rule, so a ticket ends on our
    # clock even where the cache keeps it a little longer.
    entry = {"user_id": user.pk, "expires_at": expires_at.timestamp()}
    cache.set(TICKET_CACHE_PREFIX + digest(ticket), entry, timeout=seconds + 1)
    return ticket, expires_at


def ws_ticket_redeem(*, ticket: str) -> int | None:
    """The id of the user a ticket was issued to, consuming it; None if unknown, expired or used.

    Single use holds under concurrency: of two connections presenting one ticket, both may read it, but
    the cache's delete (Redis DEL; the local-memory cache's, under its lock) reports a removal to only
    one of them."""
    key = TICKET_CACHE_PREFIX + digest(ticket)
    entry = cache.get(key)
    if not isinstance(entry, dict) or not cache.delete(key):
        return None
    if entry["expires_at"] <= timezone.now().timestamp():
        return None
    return int(entry["user_id"])
