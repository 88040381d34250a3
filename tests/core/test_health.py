"""Liveness and readiness, against the real MariaDB, Redis and Redis broker the suite runs on."""

from __future__ import annotations

import contextlib

import pytest
from django.conf import settings

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
def test_it_names_the_broker_when_the_broker_is_unreachable(client):
    with broker_at(DEAD_BROKER):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "cache": "ok", "broker": "failing"},
        "failing": ["broker"],
    }


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
        assert client.get("/readyz").status_code == 503

    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("url", ["/healthz", "/readyz"])
def test_it_answers_only_get(client, url):
    assert client.post(url).status_code == 405
