"""Sessions read from Redis and written through to the database (SESSION_ENGINE when REDIS_URL is set).

Every node reads a session from the shared cache without a database query; the database holds every
session for the cache's misses. Two changes to Django's cached_db:

* Redis unreachable is never an error: each cache call falls back to the database (Django's load() still
  raises when it refills the cache, and exists()/delete() always do), so with Redis down people sign in,
  work and sign out from the database alone.
* The cached copy lives at most OPD_SESSION_CACHE_SECONDS. A sign-out while Redis is unreachable deletes
  the database row but cannot delete the cached copy; if Redis comes back with its data, that copy would
  let the session be used again until it expires, so it must expire soon.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import cached_db, db
from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django.contrib.sessions")


class SessionStore(cached_db.SessionStore):
    # Set by cached_db.SessionStore.__init__; django-stubs leave these private attributes out.
    _cache: BaseCache

    def _cache_seconds(self, **kwargs: Any) -> int:
        return min(int(self.get_expiry_age(**kwargs)), settings.OPD_SESSION_CACHE_SECONDS)

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            logger.warning("Session cache unreachable; reading the database", exc_info=True)
            data = None
        if data is not None:
            return dict(data)
        stored = self._get_session_from_db()  # type: ignore[attr-defined]
        if not stored:
            return {}
        data = self.decode(stored.session_data)
        try:
            self._cache.set(self.cache_key, data, self._cache_seconds(expiry=stored.expire_date))
        except Exception:
            logger.warning("Session cache unreachable; not refilled", exc_info=True)
        return dict(data)

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        try:
            if (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception:
            logger.warning("Session cache unreachable; asking the database", exc_info=True)
        return bool(db.SessionStore.exists(self, session_key))

    def save(self, must_create: bool = False) -> None:
        db.SessionStore.save(self, must_create)
        try:
            self._cache.set(self.cache_key, self._session, self._cache_seconds())  # type: ignore[attr-defined]
        except Exception:
            logger.warning("Session cache unreachable; saved to the database only", exc_info=True)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        db.SessionStore.delete(self, session_key)
        if key is None:
            return
        try:
            self._cache.delete(self.cache_key_prefix + key)
        except Exception:
            logger.warning("Session cache unreachable; its copy expires by itself", exc_info=True)
