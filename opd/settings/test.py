"""Test settings: the real MariaDB and Redis from `make services` (DATABASE_URL, REDIS_URL)."""

import os
import tempfile

os.environ.setdefault("CACHE_KEY_PREFIX", "opd-test")
os.environ.setdefault("CHANNELS_PREFIX", "opd-test")

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL

if not (os.environ.get("DATABASE_URL") and REDIS_URL) and not os.environ.get("OPD_TEST_EMBEDDED"):
    raise ImproperlyConfigured(
        "Tests run on MariaDB and Redis: run them with `make test`, or export the URLs `make services` prints."
    )

# A fixed audit key, so MACs and seals made in one test process verify in another (servers, workers).
OPD_AUDIT_KEY = "test-audit-key-only-for-the-suite-0123456789abcdefghijklmnop"
OPD_AUDIT_KEY_IS_DEVELOPMENT = False
# Fixed test keys (never used anywhere else), so runs and processes read each other's rows.
OPD_ENCRYPTION_KEYS = ["dGVzdC1lbmNyeXB0aW9uLWtleS0xLTMyLWJ5dGVzISE="]
OPD_BLIND_INDEX_KEY = "dGVzdC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMhISE="
OPD_BLIND_INDEX_KEY_PREVIOUS = ""
OPD_DEVELOPMENT_KEY_FILE = None
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# OPD_TEST_DB_NAME lets two suites share one server without sharing a database (must start with test_opd).
DATABASES["default"]["TEST"] = {
    **DATABASES["default"].get("TEST", {}),
    "NAME": os.environ.get("OPD_TEST_DB_NAME", "test_opd"),
}
# A test rig: the second factor is switched off for the deployment, as the setting's comment allows;
# tests/core/test_second_factor.py switches it on and proves every door asks for it.
OPD_REQUIRE_SECOND_FACTOR = False
# Static files straight from the apps (no collectstatic before tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tasks run in the test process unless a test starts real workers (those switch this off themselves);
# otherwise every committed booking would leave send tasks on the shared Redis queue.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "true").lower() == "true"
# Eager tasks on the outbox's sender thread would run on a connection of their own, outside the test's
# transaction: here the request sends them after its commit; tests of the sender thread switch it on.
OPD_EVENTS_SEND_AFTER_RESPONSE = os.environ.get("OPD_EVENTS_SEND_AFTER_RESPONSE", "false").lower() == "true"
OPD_SMS_FILE_DIR = tempfile.mkdtemp(prefix="opd-test-sms-")
# Rate-limit counters live in the cache and every test client is 127.0.0.1: each pytest-xdist worker
# keeps its own (tests/conftest.py also clears them before each test), so one worker cannot throttle another.
if "KEY_PREFIX" in CACHES["default"]:  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] += "-" + os.environ.get("PYTEST_XDIST_WORKER", "main")  # noqa: F405
# The API token check's cache (opd.core.token_cache) is dropped by commits; most tests run inside one
# transaction that never commits, so it is off here and on in the tests that prove it
# (tests/core/test_token_cache.py, on committed transactions).
OPD_API_TOKEN_CACHE_SECONDS = 0
