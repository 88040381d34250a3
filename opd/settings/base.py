"""Settings read from the environment, in sections.

Nothing set gives the embedded default (SQLite file, local-memory cache, in-memory channel layer,
file-system Celery broker) so `make run` works on a bare machine. DATABASE_URL and REDIS_URL switch
to MariaDB/MySQL and Redis, as production and the test suite use; REDIS_SENTINELS to a Redis watched by
Sentinel.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()

# CORE
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Nothing set is the try-it-out default, so a bare `manage.py` works with a published development key.
# Django's deploy check flags its "django-insecure-" prefix, and opd.settings.production refuses it.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-never-use-in-production-0123456789abcdef"
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "opd.core",
    "patients",
    "scheduling",
    "consultations",
    "billing",
    "notifications",
    "analytics",
    "archive",
    "portal",
    # Seeding and the benchmark harness: make run, make test and make bench use them; production.py drops it.
    "devtools",
]

MIDDLEWARE = [
    # Outermost: the request id (X-Request-ID) for every log line and task, and the Prometheus metrics
    # of the whole request (opd.core.observability).
    "opd.core.observability.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer (# SECURITY below), next to Django's other security headers.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Read-your-writes with a read replica: a user's unsafe request sends their replica reads to the
    # primary for a while (opd.core.db_router; does nothing without REPLICA_DATABASE_URL).
    "opd.core.db_router.ReplicaStickyMiddleware",
    # request.user.is_verified(): whether this session gave a second factor (django-otp), then the
    # redirect to give one where the person's sign-in needs it (opd.core.second_factor).
    "django_otp.middleware.OTPMiddleware",
    "opd.core.middleware.SecondFactorMiddleware",
    # Source address and user agent for audit rows; writes the request's buffered access-log rows.
    "opd.core.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Session idle timeout and absolute lifetime (needs the user and messages), then no-store on
    # every authenticated answer.
    "opd.core.middleware.SessionLifetimeMiddleware",
    "opd.core.middleware.NoStoreAuthenticatedMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a sign-in django-axes refused into the 429 lockout answer (opd.core.signin).
    "axes.middleware.AxesMiddleware",
    # Innermost, so it sees what a view raised before any other middleware does.
    "opd.core.api.exceptions.ApiServerErrorMiddleware",
]

ROOT_URLCONF = "opd.urls"
WSGI_APPLICATION = "opd.wsgi.application"
ASGI_APPLICATION = "opd.asgi.application"
AUTH_USER_MODEL = "core.User"
# django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.inbox",
            ],
        },
    },
]

# DATABASE
# Without DATABASE_URL: a SQLite file for trying the product out. Production and tests: MariaDB/MySQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'opd.sqlite3'}")}
# Persistent connections double WSGI throughput; under ASGI the websocket consumers' thread pool would
# keep one per thread, so the ASGI server is started with CONN_MAX_AGE=0.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# Threads of the ASGI process answering HTTP (opd/asgi.py: Django's WSGI handler on a thread pool). Two: one
# slow request does not hold up the others, and few threads contend for one interpreter lock. Measured
# under load (`manage.py bench --only embedded`, 2026-12-06), ping and a cached slot listing answered 0.47x
# and 0.29x of gunicorn's two workers with 8 threads, 0.51-0.58x and 0.33-0.40x with 2, 0.60x and 0.40-0.44x
# with 1: each thread that waits on Redis or the database must win the lock back from the others.
OPD_ASGI_HTTP_THREADS = env.int("OPD_ASGI_HTTP_THREADS", default=2)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # Locking reads plus READ COMMITTED: a booking sees the seat counts other bookings committed.
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES', innodb_lock_wait_timeout=20",
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Read replica (opd/core/db_router.py): only defined when its URL is set, so the normal suite creates
# no second test database. Views opt in to it (replica_reads); writes and every other read use default.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")
# A user who wrote reads from the primary this long (read-your-writes across replication lag).
REPLICA_STICKY_SECONDS = env.int("REPLICA_STICKY_SECONDS", default=10)
# Past this lag (Seconds_Behind_Master; unknown counts as too much) reads go to the primary.
REPLICA_MAX_LAG_SECONDS = env.int("REPLICA_MAX_LAG_SECONDS", default=5)
if REPLICA_STICKY_SECONDS < 0 or REPLICA_MAX_LAG_SECONDS < 0:
    raise ImproperlyConfigured("REPLICA_STICKY_SECONDS and REPLICA_MAX_LAG_SECONDS must not be negative.")
if REPLICA_DATABASE_URL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.mysql":
        raise ImproperlyConfigured("REPLICA_DATABASE_URL needs a MariaDB/MySQL DATABASE_URL.")
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"].update(
        {
            "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
            "CONN_HEALTH_CHECKS": True,
            # A replica that is down must cost a request little before it falls back to the primary.
            "OPTIONS": {**DATABASES["default"]["OPTIONS"], "connect_timeout": 2},
            # Under a test runner the alias is the default test database, never a database of its own.
            "TEST": {"MIRROR": "default"},
        }
    )
    DATABASE_ROUTERS = ["opd.core.db_router.ReplicaRouter"]

# BACKUPS: where `manage.py backup` writes its files unless given --output-dir.
OPD_BACKUP_DIR = env.path("OPD_BACKUP_DIR", default=str(DATA_DIR / "backups"))

# REDIS
# One Redis serves the cache, the channel layer and the Celery broker. Either REDIS_URL names it, or Redis
# Sentinel does: REDIS_SENTINELS=host:port,host:port and REDIS_SENTINEL_MASTER=name make all three ask the
# sentinels for the current primary on each new connection, so a failover (Sentinel promotes a replica)
# needs no restart. With sentinels, REDIS_URL is optional and only its password and database number are
# used (redis://:PASSWORD@ignored/DB); REDIS_SENTINEL_PASSWORD is the sentinels' own (requirepass).
REDIS_SENTINELS: list[tuple[str, int]] = []
for _address in env.list("REDIS_SENTINELS", default=[]):
    _host, _, _port = _address.strip().rpartition(":")
    if not _host or not _port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS: {_address!r} is not host:port.")
    REDIS_SENTINELS.append((_host, int(_port)))
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="")
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", default="")
if REDIS_SENTINELS and not REDIS_SENTINEL_MASTER:
    raise ImproperlyConfigured(
        "REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the name the sentinels monitor)."
    )
REDIS_URL = env("REDIS_URL", default="")
if REDIS_SENTINELS:
    _redis = urlsplit(REDIS_URL or "redis://master/0")
    REDIS_DB = int((_redis.path or "/0").lstrip("/") or 0)
    REDIS_PASSWORD = unquote(_redis.password or "")
    # The host of this URL is the master's name: django-redis's sentinel pool reads it as such.
    _auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
    REDIS_URL = f"redis://{_auth}{REDIS_SENTINEL_MASTER}/{REDIS_DB}"
_sentinel_kwargs = {"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else None

# CACHE
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="opd"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 5,
            },
        }
    }
    if REDIS_SENTINELS:
        # The default client on a sentinel pool: reads and writes both go to the primary (rate-limit
        # counters and websocket tickets must not be read from a replica that lags behind).
        CACHES["default"]["OPTIONS"].update(
            {
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": REDIS_SENTINELS,
                "SENTINEL_KWARGS": _sentinel_kwargs,
            }
        )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions: read from Redis on every node, written through to the database (opd.core.sessions).
if REDIS_URL:
    SESSION_ENGINE = "opd.core.sessions"
# How long a session's copy stays in Redis (the database holds it for as long as it lives).
OPD_SESSION_CACHE_SECONDS = env.int("OPD_SESSION_CACHE_SECONDS", default=300)

# CELERY
if REDIS_SENTINELS:
    # kombu's sentinel transport: every sentinel in one URL, separated by ";"; the password is the primary's.
    _broker_auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
    _default_broker = ";".join(f"sentinel://{_broker_auth}{h}:{p}/{REDIS_DB}" for h, p in REDIS_SENTINELS)
else:
    _default_broker = REDIS_URL or "filesystem://"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_default_broker)
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "celery-broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # A task is acknowledged after it ran (acks late). A worker killed mid-task (SIGKILL, a lost machine)
    # never acknowledges it, and the broker hands it to another worker once it has been unacknowledged
    # this long: longer than the longest task (CELERY_TASK_TIME_LIMIT), so a task still running is not
    # handed out twice. A worker whose pool child dies redelivers at once (reject on worker lost).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # kombu's Redis transport, publishing through one client instead of a new one per message.
        CELERY_BROKER_TRANSPORT = "opd.core.broker:Transport"
    if CELERY_BROKER_URL.startswith("sentinel://"):
        CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
        if _sentinel_kwargs:
            CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = _sentinel_kwargs
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# django-celery-beat's DatabaseScheduler behind a leader lock in Redis (opd.core.beat): every node may run a
# beat, one sends. A killed leader is replaced after OPD_BEAT_LEADER_TTL_SECONDS.
CELERY_BEAT_SCHEDULER = "opd.core.beat:LeaderDatabaseScheduler"
OPD_BEAT_LEADER_KEY = env(
    "OPD_BEAT_LEADER_KEY", default=env("CACHE_KEY_PREFIX", default="opd") + ":beat-leader"
)
OPD_BEAT_LEADER_TTL_SECONDS = env.float("OPD_BEAT_LEADER_TTL_SECONDS", default=30.0)
if OPD_BEAT_LEADER_TTL_SECONDS < 1:
    raise ImproperlyConfigured("OPD_BEAT_LEADER_TTL_SECONDS must be at least 1.")
# The queue tasks go to when nothing routes them elsewhere; two deployments (or test runs) sharing one
# Redis keep apart with their own.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Defaults the DatabaseScheduler copies into its tables at start; staff edit them in the admin.
CELERY_BEAT_SCHEDULE = {
    "scheduling.roll_slot_horizon": {
        "task": "scheduling.roll_slot_horizon",
        "schedule": 6 * 3600,
        "options": {"expires": 3600},
    },
    "core.purge_idempotency_records": {
        "task": "core.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
    # Expired break-the-glass grants (the access log keeps their reasons).
    "core.purge_access_grants": {
        "task": "core.purge_access_grants",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
    "notifications.dispatch_due": {
        "task": "notifications.dispatch_due",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "scheduling.sweep_no_shows": {
        "task": "scheduling.sweep_no_shows",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    "analytics.refresh_summaries": {
        "task": "analytics.refresh_summaries",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    # Waiting patients whose NEWS2 observations are due again (OPD_NEWS2_RESCORE_MINUTES).
    "consultations.news2_rescore_reminders": {
        "task": "consultations.news2_rescore_reminders",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "core.audit_seal": {
        "task": "core.audit_seal",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "core.audit_verify_daily": {
        "task": "core.audit_verify_daily",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 3 * 3600},
    },
    "archive.archive_old_records": {
        "task": "archive.archive_old_records",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 3 * 3600},
    },
}
CELERY_TIMEZONE = "UTC"

# OUTBOX (opd.core.outbox)
# Every domain event is written to the outbox in its change's transaction and delivered at once by the
# process that committed; that process marks it delivered in a batch every OPD_OUTBOX_MARK_INTERVAL_SECONDS.
# An event still undelivered OPD_OUTBOX_GRACE_SECONDS after its change (the process died, a subscriber
# failed) is delivered by the relay, which runs every OPD_OUTBOX_RELAY_INTERVAL_SECONDS; a failing event is
# retried after OPD_OUTBOX_RETRY_SECONDS, doubling (at most an hour), OPD_OUTBOX_MAX_ATTEMPTS times.
# Delivered rows are deleted after OPD_OUTBOX_RETENTION_HOURS.
OPD_OUTBOX_GRACE_SECONDS = env.float("OPD_OUTBOX_GRACE_SECONDS", default=15.0)
OPD_OUTBOX_MARK_INTERVAL_SECONDS = env.float("OPD_OUTBOX_MARK_INTERVAL_SECONDS", default=1.0)
OPD_OUTBOX_RELAY_INTERVAL_SECONDS = env.float("OPD_OUTBOX_RELAY_INTERVAL_SECONDS", default=5.0)
OPD_OUTBOX_RETRY_SECONDS = env.float("OPD_OUTBOX_RETRY_SECONDS", default=30.0)
OPD_OUTBOX_MAX_ATTEMPTS = env.int("OPD_OUTBOX_MAX_ATTEMPTS", default=10)
OPD_OUTBOX_RETENTION_HOURS = env.float("OPD_OUTBOX_RETENTION_HOURS", default=24.0)
# Event handlers that only hand an event on (a Celery task, a channel-layer message) run on a sender thread
# of the process after the request has answered (opd.core.outbox); false: in the request, after its commit.
OPD_EVENTS_SEND_AFTER_RESPONSE = env.bool("OPD_EVENTS_SEND_AFTER_RESPONSE", default=True)
if OPD_OUTBOX_MARK_INTERVAL_SECONDS <= 0 or OPD_OUTBOX_GRACE_SECONDS <= 2 * OPD_OUTBOX_MARK_INTERVAL_SECONDS:
    # A grace shorter than the marking would have the relay deliver again what was delivered.
    raise ImproperlyConfigured(
        "OPD_OUTBOX_GRACE_SECONDS must be more than twice OPD_OUTBOX_MARK_INTERVAL_SECONDS (> 0)."
    )
if OPD_OUTBOX_RELAY_INTERVAL_SECONDS <= 0 or OPD_OUTBOX_RETRY_SECONDS <= 0 or OPD_OUTBOX_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "OPD_OUTBOX_RELAY_INTERVAL_SECONDS and OPD_OUTBOX_RETRY_SECONDS must be > 0, OPD_OUTBOX_MAX_ATTEMPTS >= 1."
    )
CELERY_BEAT_SCHEDULE["core.outbox_relay"] = {
    "task": "core.outbox_relay",
    "schedule": OPD_OUTBOX_RELAY_INTERVAL_SECONDS,
    # A run that waited longer than one interval is replaced by the next one.
    "options": {"expires": OPD_OUTBOX_RELAY_INTERVAL_SECONDS},
}
CELERY_BEAT_SCHEDULE["core.outbox_prune"] = {
    "task": "core.outbox_prune",
    "schedule": 3600.0,
    "options": {"expires": 1800},
}

# CHANNELS
CHANNELS_SOCKET_TIMEOUT = env.float("CHANNELS_SOCKET_TIMEOUT", default=15.0)
if REDIS_URL:
    # Each socket's receive loop blocks in BZPOPMIN for up to 5 s (channels-redis brpop_timeout), and
    # redis-py's asyncio connections time out reads after 5 s by default: the two race, and a lost race
    # ended the consumer receiving for its process and uvicorn closed that socket (1011) every few idle
    # seconds (the sockets that got no events in issue 18's fan-out). Reads wait longer than the pop.
    _channel_host: dict[str, object] = {"socket_timeout": CHANNELS_SOCKET_TIMEOUT}
    if REDIS_SENTINELS:
        # channels-redis builds a sentinel pool from a dict host: it finds the primary on each connection.
        _channel_host |= {
            "sentinels": REDIS_SENTINELS,
            "master_name": REDIS_SENTINEL_MASTER,
            "sentinel_kwargs": _sentinel_kwargs,
            "db": REDIS_DB,
            **({"password": REDIS_PASSWORD} if REDIS_PASSWORD else {}),
        }
    else:
        _channel_host["address"] = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [_channel_host],
                "prefix": env("CHANNELS_PREFIX", default="opd"),
                # Messages waiting in Redis for one ASGI process, and for one socket in that process. The
                # first is per process, not per socket (channels-redis queues a group message once per
                # process, for all its sockets in the group); at the default of 100, a process busy
                # writing a change to a thousand sockets while more changes came would have had the
                # next group sends dropped, for every socket it serves, silently.
                "capacity": env.int("CHANNELS_CAPACITY", default=1000),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Pages learn where to open websockets; behind a proxy that routes /ws/ this stays empty (same origin).
WEBSOCKET_BASE_URL = env("WEBSOCKET_BASE_URL", default="")
# A queue socket answers at most one resync per this many seconds (each reads the whole day's queue).
OPD_QUEUE_RESYNC_INTERVAL_SECONDS = env.float("OPD_QUEUE_RESYNC_INTERVAL_SECONDS", default=1.0)

# SECURITY
# The audit trail's key (opd.core.audit): every audit row carries an HMAC of its content under it, and the
# per-organization hash chain (AuditSeal) is keyed with it, so someone with database access only cannot
# forge a row or recompute a chain. Production refuses to start without a strong one (production.py).
# Unset (make run, SQLite): a development key derived from the development SECRET_KEY: it is public,
# so a chain made with it proves nothing. Changing the key makes every existing row and seal fail
# verification: keep it as long as the trail.
OPD_AUDIT_KEY = env("OPD_AUDIT_KEY", default="")
OPD_AUDIT_KEY_IS_DEVELOPMENT = not OPD_AUDIT_KEY
if not OPD_AUDIT_KEY:
    import hashlib

    OPD_AUDIT_KEY = "development-" + hashlib.sha256(b"opd.audit:" + SECRET_KEY.encode()).hexdigest()
# The sealer looks back this far before the newest event it sealed, for rows whose transaction committed
# after later rows had been sealed; verification calls an unsealed event older than that inserted.
OPD_AUDIT_SEAL_MARGIN_MINUTES = env.int("OPD_AUDIT_SEAL_MARGIN_MINUTES", default=60)
# The daily verification mails each organization's admins when its chain fails and, with this on, an OK
# summary too (a missing mail is then noticed: silence cannot mean both "fine" and "the job stopped").
OPD_AUDIT_VERIFY_MAIL_OK = env.bool("OPD_AUDIT_VERIFY_MAIL_OK", default=True)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("OPD_PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
# Sessions end after an idle spell (by role) and, however active, after SESSION_COOKIE_AGE: see
# opd.core.middleware.SessionLifetimeMiddleware.
OPD_SESSION_IDLE_MINUTES_STAFF = env.int("OPD_SESSION_IDLE_MINUTES_STAFF", default=30)  # and doctors, admins
OPD_SESSION_IDLE_MINUTES_PATIENT = env.int("OPD_SESSION_IDLE_MINUTES_PATIENT", default=120)
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=12 * 60 * 60)
if min(OPD_SESSION_IDLE_MINUTES_STAFF, OPD_SESSION_IDLE_MINUTES_PATIENT) < 1 or SESSION_COOKIE_AGE < 60:
    raise ImproperlyConfigured(
        "Session idle minutes must be at least 1 and DJANGO_SESSION_COOKIE_AGE at least 60."
    )
# Content-Security-Policy (django-csp): no inline scripts or styles anywhere; JS and CSS come from static/.
# 'self' covers same-origin ws:/wss: in CSP3 browsers; a separate websocket origin is added explicitly.
_connect_src = [SELF]
if WEBSOCKET_BASE_URL:
    _connect_src.append(WEBSOCKET_BASE_URL.rstrip("/"))
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": _connect_src,
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "object-src": [NONE],
    }
}
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = (
    "portal:after-login"  # patients to the portal, doctors to the dashboard, staff to the admin
)
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

# ENCRYPTION AT REST (opd.core.crypto)
# Sensitive identifiers, clinical free text and result attachments are encrypted with AES-256-GCM.
# OPD_ENCRYPTION_KEYS: comma-separated 32-byte keys in URL-safe base64; the first encrypts, all decrypt
# (add a new key in front, run `manage.py rotate_keys`, then drop the old one). OPD_BLIND_INDEX_KEY keys
# the HMAC indexes behind phone and insurance search; OPD_BLIND_INDEX_KEY_PREVIOUS is searched too while
# `manage.py rotate_keys --blind-index` recomputes them. Neither set (the embedded default): development
# keys are generated into OPD_DEVELOPMENT_KEY_FILE on first use. Production refuses to start without keys.
OPD_ENCRYPTION_KEYS = env.list("OPD_ENCRYPTION_KEYS", default=[])
OPD_BLIND_INDEX_KEY = env("OPD_BLIND_INDEX_KEY", default="")
OPD_BLIND_INDEX_KEY_PREVIOUS = env("OPD_BLIND_INDEX_KEY_PREVIOUS", default="")
OPD_DEVELOPMENT_KEY_FILE: Path | None = Path(
    env("OPD_DEVELOPMENT_KEY_FILE", default=str(DATA_DIR / "development-keys.env"))
)
if OPD_ENCRYPTION_KEYS or OPD_BLIND_INDEX_KEY:
    # Bad values fail at start, not at the first patient saved.
    from opd.core.crypto import build_keyring

    build_keyring(OPD_ENCRYPTION_KEYS, OPD_BLIND_INDEX_KEY, OPD_BLIND_INDEX_KEY_PREVIOUS)

# SIGN-IN PROTECTION
# django-axes: OPD_SIGNIN_FAILURE_LIMIT failures for one username, or from one address, lock sign-in for
# that username (or address) on every door (admin, /accounts/login/, the API token) for the cool-off. Each
# attempt during a lockout, the right password included, is refused and starts the cool-off again. A clinic
# whose staff share one address behind NAT can list it in OPD_SIGNIN_IP_ALLOWLIST (accounts still lock).
# Failures live in the database (axes' database handler): lockouts survive restarts, and superusers see
# and delete them in the admin ("Access attempts"); `manage.py axes_reset_username NAME` unlocks a name.
AXES_FAILURE_LIMIT = env.int("OPD_SIGNIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("OPD_SIGNIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks: per account, and per address
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "opd.core.signin.lockout_response"
# The address the API throttles count by, so a proxy's X-Forwarded-For is trusted the same way by both.
AXES_CLIENT_IP_CALLABLE = "opd.core.api.throttling.client_ip"
AXES_IP_WHITELIST = env.list("OPD_SIGNIN_IP_ALLOWLIST", default=[]) or None
# Axes stores the POSTed form with each failure; keep the password (and the token) out of it.
AXES_SENSITIVE_PARAMETERS = ["password", "token", "csrfmiddlewaretoken"]
LOGOUT_REDIRECT_URL = "/"

# SECOND FACTOR
# Administrators, staff and doctors confirm each sign-in with a TOTP code (an authenticator app) or a
# one-time recovery code, when their organization requires it (Organization.require_second_factor, on by
# default); patients may enrol. OPD_REQUIRE_SECOND_FACTOR=false turns the requirement off for the whole
# deployment (automated clients, test rigs): `check --deploy` warns while it is off.
OPD_REQUIRE_SECOND_FACTOR = env.bool("OPD_REQUIRE_SECOND_FACTOR", default=True)
OTP_TOTP_ISSUER = env("OPD_TOTP_ISSUER", default="OPD")
OTP_TOTP_THROTTLE_FACTOR = 1  # each wrong code doubles the wait before the next is checked
OPD_RECOVERY_CODE_COUNT = 10

# I18N / TIME
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# STATIC
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# EMAIL
EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="OPD <no-reply@opd.local>")

# API
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "opd.core.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "opd.core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "opd.core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "opd.core.api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # How many reverse proxies' X-Forwarded-For to trust for the client address; 0 trusts none (the
    # header is the client's to forge), so set it to the number of proxies in front of the app.
    "NUM_PROXIES": env.int("OPD_NUM_PROXIES", default=0),
    # opd.core.api.throttling: "<scope>_ip" per address, "<scope>_user" per account ("<scope>_<role>"
    # for that role). Counted in the cache (Redis when REDIS_URL is set). 429 with Retry-After beyond.
    "DEFAULT_THROTTLE_RATES": {
        "signin_ip": env("OPD_RATE_SIGNIN_IP", default="30/min"),
        "signup_ip": env("OPD_RATE_SIGNUP_IP", default="20/hour"),
        "signup_user": env("OPD_RATE_SIGNUP_EMAIL", default="5/hour"),
        "password_reset_ip": env("OPD_RATE_PASSWORD_RESET_IP", default="20/hour"),
        "password_reset_user": env("OPD_RATE_PASSWORD_RESET_EMAIL", default="5/hour"),
        "booking_ip": env("OPD_RATE_BOOKING_IP", default="600/hour"),
        "booking_user": env("OPD_RATE_BOOKING_USER", default="120/hour"),
        "booking_patient": env("OPD_RATE_BOOKING_PATIENT", default="20/hour"),
        "verification_resend_ip": env("OPD_RATE_VERIFICATION_RESEND_IP", default="20/hour"),
        "verification_resend_user": env("OPD_RATE_VERIFICATION_RESEND_USER", default="3/hour"),
    },
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")
SPECTACULAR_SETTINGS = {
    "TITLE": "OPD platform API",
    "DESCRIPTION": "Outpatient department: patients, doctors, slots, appointments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: pages work offline on a clinic's network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AppointmentStatusEnum": "scheduling.models.AppointmentStatus",
        "PatientStatusEnum": "patients.models.PatientStatus",
        "AllergyCategoryEnum": "patients.models.AllergyCategory",
        "AllergySeverityEnum": "patients.models.AllergySeverity",
        "AllergyStatusEnum": "patients.models.AllergyStatus",
        "ProblemStatusEnum": "patients.models.ProblemStatus",
        "MedicationStatusEnum": "patients.models.MedicationStatus",
        "CareCategoryEnum": "consultations.models.CareCategory",
        "InvoiceStatusEnum": "billing.models.InvoiceStatus",
        "NotificationKindEnum": "notifications.models.Kind",
    },
}

# API TOKENS
# A token from POST /api/v1/auth/token/ lives this long (a working day and some); logout, revocation,
# a password change and deactivation end it earlier.
OPD_TOKEN_TTL_HOURS = env.int("OPD_TOKEN_TTL_HOURS", default=24)
# How long an API token check may be answered from Redis (opd.core.token_cache: dropped by the commit
# that changes what it read; this bounds a drop lost to a Redis outage). 0: every request reads MariaDB.
OPD_API_TOKEN_CACHE_SECONDS = env.int("OPD_API_TOKEN_CACHE_SECONDS", default=60)
# A websocket ticket (POST /api/v1/auth/ws-ticket/) must be used within this many seconds, once.
OPD_WS_TICKET_SECONDS = env.int("OPD_WS_TICKET_SECONDS", default=30)
if OPD_API_TOKEN_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("OPD_API_TOKEN_CACHE_SECONDS must be 0 (off) or more.")
if OPD_TOKEN_TTL_HOURS <= 0 or OPD_WS_TICKET_SECONDS <= 0:
    raise ImproperlyConfigured("OPD_TOKEN_TTL_HOURS and OPD_WS_TICKET_SECONDS must be positive.")

# DOMAIN
# How far ahead slots are materialized, and how many days of availability `generate_slots` looks at.
OPD_SLOT_HORIZON_DAYS = env.int("OPD_SLOT_HORIZON_DAYS", default=28)
# How long a stored Idempotency-Key answer is replayed before hourly housekeeping removes it.
OPD_IDEMPOTENCY_KEY_HOURS = env.int("OPD_IDEMPOTENCY_KEY_HOURS", default=24)
# Where people reach this deployment (scheme, host, optional port and path prefix, no trailing slash):
# every absolute link in a message (manage-booking links, report downloads) is built on it, never on the
# host a worker happens to run on. OPD_BASE_URL is its earlier name, still read. Production refuses a
# missing or placeholder value (production.py), so e-mails cannot point at a developer's port 8000.
OPD_SITE_URL = env("OPD_SITE_URL", default=env("OPD_BASE_URL", default="http://127.0.0.1:8000")).rstrip("/")
if not re.match(r"^https?://[^/\s]+(/\S*)?$", OPD_SITE_URL):
    raise ImproperlyConfigured(
        "OPD_SITE_URL must be an absolute http(s) address, e.g. https://opd.example.org"
    )
# A manage-booking link (in confirmations and reminders) works until its appointment ends, and at most
# this many days after it was sent (a signed, timestamped token: notifications.links).
OPD_MANAGE_LINK_MAX_AGE_DAYS = env.int("OPD_MANAGE_LINK_MAX_AGE_DAYS", default=90)
if OPD_MANAGE_LINK_MAX_AGE_DAYS <= 0:
    raise ImproperlyConfigured("OPD_MANAGE_LINK_MAX_AGE_DAYS must be positive.")

# PATIENT SIGN-UP
# How long an e-mail verification link works (seconds; default 3 days).
OPD_EMAIL_VERIFICATION_MAX_AGE = env.int("OPD_EMAIL_VERIFICATION_MAX_AGE", default=3 * 24 * 3600)
# How many future booked appointments a patient may hold per organization when booking themselves
# (staff booking on a patient's behalf are not capped). 0 turns the cap off.
OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT = env.int("OPD_MAX_FUTURE_BOOKINGS_PER_PATIENT", default=3)
# What visitors who are not signed in see of the clinics: "none" (default) or "listed" (clinics whose
# `listed_publicly` flag an administrator set).
OPD_PUBLIC_CLINICS = env("OPD_PUBLIC_CLINICS", default="none")
if OPD_PUBLIC_CLINICS not in ("none", "listed"):
    raise ImproperlyConfigured('OPD_PUBLIC_CLINICS must be "none" or "listed".')

# NOTIFICATIONS
OPD_NOTIFICATIONS_QUEUE = env("OPD_NOTIFICATIONS_QUEUE", default="")  # "" = Celery's default queue
OPD_NOTIFICATION_MAX_ATTEMPTS = env.int("OPD_NOTIFICATION_MAX_ATTEMPTS", default=5)
OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS = env.float("OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS", default=30)
OPD_NOTIFICATION_RETRY_BACKOFF_MAX = env.float("OPD_NOTIFICATION_RETRY_BACKOFF_MAX", default=3600)
# A claimed send is taken over by another worker after this; keep it above the send task's 90 s limit.
OPD_NOTIFICATION_LEASE_SECONDS = env.int("OPD_NOTIFICATION_LEASE_SECONDS", default=300)
OPD_NOTIFICATION_REDISPATCH_SECONDS = env.int("OPD_NOTIFICATION_REDISPATCH_SECONDS", default=120)
OPD_REMINDER_LEAD_MINUTES = env.list("OPD_REMINDER_LEAD_MINUTES", cast=int, default=[1440, 120])
OPD_NO_SHOW_GRACE_MINUTES = env.int("OPD_NO_SHOW_GRACE_MINUTES", default=30)
# A no-show marked on the dashboard (or by the sweep) can be undone for this many minutes
# (scheduling.services.queue.appointment_undo_no_show): long enough to notice a wrong click, short
# enough that nobody has acted on the no-show yet.
OPD_UNDO_MINUTES = env.int("OPD_UNDO_MINUTES", default=5)
if not 1 <= OPD_UNDO_MINUTES <= 60:
    raise ImproperlyConfigured("OPD_UNDO_MINUTES must be between 1 and 60.")
# How long a waiting patient's triage observations hold before the triage page and the clinic's queue
# are reminded to re-score, per NEWS2 clinical response (consultations.services.triage). The RCP 2017
# chart's least frequencies (12 h routine, 4-6 h ward, 1 h urgent, continuous emergency) are for wards;
# a waiting room is shorter, so each is tightened: e.g. OPD_NEWS2_RESCORE_MINUTES=urgent=20,emergency=10
# overrides some and keeps the rest.
OPD_NEWS2_RESCORE_MINUTES = {
    "routine": 120,
    "ward": 60,
    "urgent_ward": 30,
    "urgent": 30,
    "emergency": 15,
    **env.dict("OPD_NEWS2_RESCORE_MINUTES", cast={"value": int}, default={}),
}
if (
    set(OPD_NEWS2_RESCORE_MINUTES) != {"routine", "ward", "urgent_ward", "urgent", "emergency"}
    or min(OPD_NEWS2_RESCORE_MINUTES.values()) < 1
):
    raise ImproperlyConfigured(
        "OPD_NEWS2_RESCORE_MINUTES takes routine, ward, urgent_ward, urgent and emergency, each at least 1."
    )
OPD_EMAIL_TIMEOUT = env.float("OPD_EMAIL_TIMEOUT", default=30)
OPD_SMS_BACKEND = env("OPD_SMS_BACKEND", default="notifications.backends.FileSmsBackend")
OPD_SMS_FILE_DIR = env("OPD_SMS_FILE_DIR", default=str(DATA_DIR / "sms"))
OPD_SMS_HTTP_URL = env("OPD_SMS_HTTP_URL", default="")
OPD_SMS_HTTP_TOKEN = env("OPD_SMS_HTTP_TOKEN", default="")
OPD_SMS_HTTP_TIMEOUT = env.float("OPD_SMS_HTTP_TIMEOUT", default=10)
OPD_SMS_SENDER = env("OPD_SMS_SENDER", default="OPD")
OPD_ARCHIVE_RETENTION_DAYS = env.int("OPD_ARCHIVE_RETENTION_DAYS", default=1826)  # about 5 years
OPD_ARCHIVE_BATCH_SIZE = env.int("OPD_ARCHIVE_BATCH_SIZE", default=200)

# CLINICAL RECORD
OPD_RESULT_ATTACHMENT_MAX_BYTES = env.int("OPD_RESULT_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
# Break the glass (consultations.access): a doctor has a care relationship with a patient through an
# appointment with them (not cancelled) at one of their clinics that starts at most this many months
# ago, or later (today's, upcoming); without one, opening the record needs a stated reason of at least
# OPD_BREAK_GLASS_REASON_MIN_LENGTH characters, which then holds for OPD_BREAK_GLASS_MINUTES.
OPD_CARE_RELATIONSHIP_MONTHS = env.int("OPD_CARE_RELATIONSHIP_MONTHS", default=12)
OPD_BREAK_GLASS_MINUTES = env.int("OPD_BREAK_GLASS_MINUTES", default=30)
OPD_BREAK_GLASS_REASON_MIN_LENGTH = env.int("OPD_BREAK_GLASS_REASON_MIN_LENGTH", default=10)
if min(OPD_CARE_RELATIONSHIP_MONTHS, OPD_BREAK_GLASS_MINUTES, OPD_BREAK_GLASS_REASON_MIN_LENGTH) < 1:
    raise ImproperlyConfigured(
        "OPD_CARE_RELATIONSHIP_MONTHS, OPD_BREAK_GLASS_MINUTES and OPD_BREAK_GLASS_REASON_MIN_LENGTH "
        "must be positive."
    )
# Prescribing a medicine that matches an active allergy (by name or class) needs a reason of at least
# this many characters; it is audited with the prescription (consultations.services.prescriptions).
OPD_ALLERGY_OVERRIDE_MIN_LENGTH = env.int("OPD_ALLERGY_OVERRIDE_MIN_LENGTH", default=10)
if OPD_ALLERGY_OVERRIDE_MIN_LENGTH < 1:
    raise ImproperlyConfigured("OPD_ALLERGY_OVERRIDE_MIN_LENGTH must be positive.")

# LOGGING
# OPD_LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id, task, task_id,
# exc) from every process, Celery's worker included; "plain" (the default) is for people reading a
# terminal. Both carry the request id (opd.core.observability).
OPD_LOG_FORMAT = env("OPD_LOG_FORMAT", default="plain")
if OPD_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured('OPD_LOG_FORMAT must be "plain" or "json".')
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "opd.core.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "opd.core.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": OPD_LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# METRICS
# GET /metrics (Prometheus text format) answers a scraper that sends `Authorization: Bearer
# <METRICS_TOKEN>`; unset, the endpoint does not exist (404). With several processes on a node
# (gunicorn workers, Celery's pool), PROMETHEUS_MULTIPROC_DIR, set in their environment, is where each
# writes its figures for /metrics to add up; empty it before the processes start.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
