"""Liveness and readiness, against the real MariaDB, Redis and Redis broker the suite runs on."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings
from django.test import override_settings

from opd.celery import app as celery_app

# Nothing listens on port 1: a connection there is refused at once.
DEAD_BROKER = "redis://127.0.0.1:1/0"


@contextlib.contextmanager
def broker_at(url: str):
    """Point our own Celery app at another broker address for the duration of the block."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = url
    try:
        assert celery_app.conf.broker_url == url  # CELERY_BROKER_URL in the environment would win
        yield
    finally:
        celery_app.conf.broker_url = previous


def test_it_says_it_is_alive(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_it_is_ready_when_database_cache_and_broker_answer(client):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.mysql"
    assert celery_app.conf.broker_url.startswith("redis://")

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_it_stays_in_rotation_but_says_degraded_when_the_broker_is_unreachable(client):
    # Booking and consultations work without Redis; only queued messages wait. A 503 here would take
    # every node (all sharing the one Redis) out of the load balancer at once.
    with broker_at(DEAD_BROKER):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "cache": "ok", "broker": "failing"},
        "failing": ["broker"],
    }


@pytest.mark.django_db
def test_it_stays_in_rotation_but_says_degraded_when_the_cache_is_unreachable(client):
    dead_cache = {**settings.CACHES["default"], "LOCATION": DEAD_BROKER}
    with override_settings(CACHES={**settings.CACHES, "default": dead_cache}):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["failing"] == ["cache"]


@pytest.mark.django_db(transaction=True)  # outside a test transaction, so the probe really reconnects
def test_it_leaves_rotation_when_the_database_is_unreachable(client, monkeypatch, caplog):
    from django.db import connection

    # A database that refuses connections: the settings of the live connection pointed at port 1.
    monkeypatch.setitem(connection.settings_dict, "PORT", 1)
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    connection.close()
    try:
        response = client.get("/readyz")
    finally:
        monkeypatch.undo()
        connection.close()

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["failing"] == ["database"]
    assert "Can't connect" in caplog.text or "OperationalError" in caplog.text


@pytest.mark.django_db
def test_it_keeps_the_failure_details_out_of_the_answer(client, caplog):
    with broker_at(DEAD_BROKER), caplog.at_level("WARNING", logger="opd.core.views"):
        response = client.get("/readyz")

    assert "127.0.0.1:1" not in response.content.decode()
    assert "readiness check broker failed" in caplog.text
    assert "127.0.0.1:1" in caplog.text  # the operator still finds out why, in the log


@pytest.mark.django_db
def test_it_is_ready_again_once_the_broker_is_back(client):
    with broker_at(DEAD_BROKER):
        assert client.get("/readyz").json()["status"] == "degraded"

    assert client.get("/readyz").json()["status"] == "ok"


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_it_answers_only_get(client, url):
    assert client.post(url).status_code == 405
