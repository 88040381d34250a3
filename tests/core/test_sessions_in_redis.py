"""Sessions live in Redis for every node and in MariaDB behind it (opd.core.sessions)."""

from __future__ import annotations

import copy

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import Client

from opd.core.sessions import SessionStore

pytestmark = pytest.mark.django_db

DASHBOARD = "/queue/dashboard/"
# Nothing listens there (a port of this suite's range): Redis unreachable, refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:18099/0"


def test_it_keeps_a_session_in_redis_briefly_and_in_the_database(doctor):
    client = Client()
    client.force_login(doctor.user)
    key = client.session.session_key

    cached_key = SessionStore.cache_key_prefix + key
    assert caches["default"].get(cached_key)["_auth_user_id"] == str(doctor.user.pk)
    assert 0 < caches["default"].ttl(cached_key) <= django_settings.OPD_SESSION_CACHE_SECONDS
    assert Session.objects.filter(session_key=key).exists()

    # A node that finds no copy in Redis (evicted, expired) reads the database and puts it back.
    caches["default"].delete(cached_key)
    assert client.get(DASHBOARD).status_code == 200
    assert caches["default"].get(cached_key)["_auth_user_id"] == str(doctor.user.pk)


def test_it_signs_in_works_and_signs_out_with_redis_unreachable(settings, doctor):
    settings.CACHES = {
        **copy.deepcopy(settings.CACHES),
        "down": {**copy.deepcopy(settings.CACHES["default"]), "LOCATION": UNREACHABLE_REDIS},
    }
    settings.SESSION_CACHE_ALIAS = "down"
    client = Client()

    client.force_login(doctor.user)
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()
    assert client.get(DASHBOARD).status_code == 200

    client.logout()
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(DASHBOARD).status_code == 302
