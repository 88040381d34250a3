"""Production settings, run as a real process would run them: a fresh interpreter with only the
environment a deployment sets (nothing inherited from the test settings)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from opd.core.crypto import generate_key

INHERITED_PREFIXES = ("DJANGO_", "OPD_", "CELERY_", "CACHE_", "CHANNELS_", "EMAIL_")
INHERITED_NAMES = {"DATABASE_URL", "REDIS_URL", "CONN_MAX_AGE"}


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(INHERITED_PREFIXES) and name not in INHERITED_NAMES
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "opd.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),  # 67 random characters
            "OPD_AUDIT_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": os.environ.get("DATABASE_URL", "mysql://opd:opd@127.0.0.1:3306/opd"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "DJANGO_ALLOWED_HOSTS": "opd.example.org,www.opd.example.org",
            "OPD_ENCRYPTION_KEYS": f"{generate_key()},{generate_key()}",
            "OPD_BLIND_INDEX_KEY": generate_key(),
            "OPD_SITE_URL": "https://opd.example.org",
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_passes_the_deploy_checks_with_a_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_refuses_to_start_without_a_secret_key():
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=None))

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_it_refuses_the_published_development_key():
    from opd.settings.base import DEVELOPMENT_SECRET_KEY

    result = manage("check", env=production_env(DJANGO_SECRET_KEY=DEVELOPMENT_SECRET_KEY))

    assert result.returncode != 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be false in production"),
        ({"DATABASE_URL": None}, "Production needs DATABASE_URL=mysql://"),
        ({"REDIS_URL": None}, "Production needs DATABASE_URL=mysql://... and REDIS_URL"),
    ],
    ids=["debug-on", "no-database-url", "no-redis-url"],
)
def test_it_refuses_to_start_with_development_settings(overrides, message):
    result = manage("check", env=production_env(**overrides))

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        ("changeme", "DJANGO_SECRET_KEY is a known weak value"),
        ("secret", "DJANGO_SECRET_KEY is a known weak value"),
        ("django-insecure-" + secrets.token_urlsafe(50), "DJANGO_SECRET_KEY is a known weak value"),
        (secrets.token_urlsafe(30), "DJANGO_SECRET_KEY must be at least 50 characters"),  # 40 characters
        ("ab" * 40, "at least 5 distinct ones"),
    ],
    ids=["changeme", "secret", "django-insecure-prefix", "shorter-than-50", "four-distinct-characters"],
)
def test_it_refuses_weak_secret_keys(secret_key, message):
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=secret_key))

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "overrides",
    [{"OPD_SESSION_IDLE_MINUTES_STAFF": "0"}, {"DJANGO_SESSION_COOKIE_AGE": "10"}],
    ids=["no-idle-minutes", "ten-second-sessions"],
)
def test_it_refuses_session_lifetimes_that_would_sign_everyone_out(overrides):
    result = manage("check", env=production_env(**overrides))

    assert result.returncode != 0
    assert "Session idle minutes must be at least 1" in result.stderr


@pytest.mark.parametrize(
    ("audit_key", "message"),
    [
        (None, "OPD_AUDIT_KEY is required in production"),
        ("changeme", "OPD_AUDIT_KEY must be at least 50 characters"),
        ("ab" * 40, "OPD_AUDIT_KEY must be at least 50 characters with at least 5 distinct ones"),
    ],
    ids=["missing", "weak", "four-distinct-characters"],
)
def test_it_refuses_to_start_without_a_strong_audit_key(audit_key, message):
    result = manage("check", env=production_env(OPD_AUDIT_KEY=audit_key))

    assert result.returncode != 0
    assert message in result.stderr


def test_it_refuses_an_audit_key_equal_to_the_secret_key():
    key = secrets.token_urlsafe(50)

    result = manage("check", env=production_env(DJANGO_SECRET_KEY=key, OPD_AUDIT_KEY=key))

    assert result.returncode != 0
    assert "OPD_AUDIT_KEY must differ from DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"OPD_ENCRYPTION_KEYS": None, "OPD_BLIND_INDEX_KEY": None},
            "OPD_ENCRYPTION_KEYS and OPD_BLIND_INDEX_KEY are required in production",
        ),
        ({"OPD_ENCRYPTION_KEYS": None}, "OPD_ENCRYPTION_KEYS is not set"),
        ({"OPD_BLIND_INDEX_KEY": None}, "OPD_BLIND_INDEX_KEY is not set"),
        ({"OPD_ENCRYPTION_KEYS": "not-a-key"}, "OPD_ENCRYPTION_KEYS must hold 32-byte keys"),
        ({"OPD_BLIND_INDEX_KEY": "c2hvcnQ="}, "OPD_BLIND_INDEX_KEY must hold 32-byte keys"),
        ({"OPD_BLIND_INDEX_KEY_PREVIOUS": "x" * 10}, "OPD_BLIND_INDEX_KEY_PREVIOUS must hold 32-byte keys"),
    ],
    ids=[
        "no-keys",
        "no-encryption-keys",
        "no-blind-index-key",
        "bad-key",
        "short-blind-key",
        "bad-previous-key",
    ],
)
def test_it_refuses_to_start_without_good_encryption_keys(overrides, message):
    result = manage("check", env=production_env(**overrides))

    assert result.returncode != 0
    assert message in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_it_refuses_the_same_key_for_encryption_and_blind_indexes():
    key = generate_key()
    result = manage("check", env=production_env(OPD_ENCRYPTION_KEYS=key, OPD_BLIND_INDEX_KEY=key))

    assert result.returncode != 0
    assert "OPD_BLIND_INDEX_KEY must differ" in result.stderr


def test_the_embedded_default_generates_a_private_development_key_file_once_and_says_so(tmp_path):
    key_file = tmp_path / "data" / "development-keys.env"
    env = production_env(
        DJANGO_SETTINGS_MODULE="opd.settings.base",
        OPD_ENCRYPTION_KEYS=None,
        OPD_BLIND_INDEX_KEY=None,
        OPD_DEVELOPMENT_KEY_FILE=str(key_file),
        DATABASE_URL=None,
        REDIS_URL=None,
    )
    seal = "from opd.core import crypto; print('TOKEN=' + crypto.encrypt('x', 'c'))"

    first = manage("shell", "-c", seal, env=env)
    token = first.stdout.split("TOKEN=")[-1].strip()
    unseal = f"from opd.core import crypto; print('PLAIN=' + crypto.decrypt({token!r}, 'c'))"
    second = manage("shell", "-c", unseal, env=env)

    assert first.returncode == 0, first.stderr
    assert token.startswith("e1:"), first.stdout
    assert f"Generated development encryption keys in {key_file}" in first.stderr
    assert oct(key_file.stat().st_mode & 0o777) == oct(0o600)
    assert second.returncode == 0, second.stderr
    assert "PLAIN=x" in second.stdout  # the same keys, read back from the file
    assert "Generated" not in second.stderr


def test_the_deploy_checks_warn_when_the_second_factor_is_switched_off():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(OPD_REQUIRE_SECOND_FACTOR="false")
    )

    assert result.returncode != 0
    assert "opd.W001" in result.stderr + result.stdout
    assert "OPD_REQUIRE_SECOND_FACTOR is off" in result.stderr + result.stdout


@pytest.mark.parametrize("minutes", ["0", "61", "-5"])
def test_it_refuses_an_undo_window_out_of_range(minutes):
    result = manage("check", env=production_env(OPD_UNDO_MINUTES=minutes))

    assert result.returncode != 0
    assert "OPD_UNDO_MINUTES must be between 1 and 60" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"OPD_SITE_URL": None}, "OPD_SITE_URL is required in production"),
        ({"OPD_SITE_URL": "http://127.0.0.1:8000"}, "OPD_SITE_URL is a placeholder"),
        ({"OPD_SITE_URL": "https://localhost"}, "OPD_SITE_URL is a placeholder"),
        ({"OPD_SITE_URL": "opd.clinic.org"}, "OPD_SITE_URL must be an absolute http(s) address"),
    ],
)
def test_it_refuses_to_start_without_the_sites_own_address(overrides, message):
    result = manage("check", env=production_env(**overrides))
    assert result.returncode != 0
    assert message in result.stderr


def test_redis_sentinels_point_the_cache_the_channel_layer_and_the_broker_at_the_sentinels():
    env = production_env(
        REDIS_URL="redis://:primary%20pw@ignored/3",
        REDIS_SENTINELS="10.0.0.1:26379, 10.0.0.2:26380",
        REDIS_SENTINEL_MASTER="opd-redis",
        REDIS_SENTINEL_PASSWORD="sentinel-pw",
    )
    show = (
        "import json; from django.conf import settings as s; print(json.dumps({'cache': s.CACHES['default'],"
        " 'broker': s.CELERY_BROKER_URL, 'transport': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        " 'channels': s.CHANNEL_LAYERS['default']['CONFIG']['hosts']}))"
    )
    result = manage("shell", "-c", show, env=env)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    sentinels = [["10.0.0.1", 26379], ["10.0.0.2", 26380]]
    cache = shown["cache"]
    assert cache["LOCATION"] == "redis://:primary%20pw@opd-redis/3"  # the master's name, db 3
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == sentinels
    assert cache["OPTIONS"]["SENTINEL_KWARGS"] == {"password": "sentinel-pw"}
    assert shown["broker"] == (
        "sentinel://:primary%20pw@10.0.0.1:26379/3;sentinel://:primary%20pw@10.0.0.2:26380/3"
    )
    assert shown["transport"]["master_name"] == "opd-redis"
    assert shown["transport"]["sentinel_kwargs"] == {"password": "sentinel-pw"}
    [channels] = shown["channels"]
    assert (channels["sentinels"], channels["master_name"], channels["db"]) == (sentinels, "opd-redis", 3)
    assert channels["password"] == "primary pw"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"REDIS_SENTINELS": "10.0.0.1"}, "REDIS_SENTINELS: '10.0.0.1' is not host:port"),
        ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER"),
    ],
)
def test_it_refuses_sentinel_settings_it_cannot_use(overrides, message):
    result = manage("check", env=production_env(**overrides))

    assert result.returncode != 0
    assert message in result.stderr
