"""The notifications app's settings, each read with its default so the app works before any is set.

Read at call time (never cached at import), so `override_settings` and pytest-django's `settings` fixture
take effect.

    OPD_NOTIFICATIONS_QUEUE                 ""          Celery queue for sends ("" = the default queue).
    OPD_NOTIFICATION_MAX_ATTEMPTS           5           attempts before a message is marked failed
    OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS  30          first retry delay; doubles each attempt ...
    OPD_NOTIFICATION_RETRY_BACKOFF_MAX      3600        ... up to this
    OPD_NOTIFICATION_LEASE_SECONDS          300         a claimed send is another worker's to take after this
    OPD_NOTIFICATION_REDISPATCH_SECONDS     120         a due message no worker took is enqueued again after
    OPD_NOTIFICATION_DISPATCH_BATCH         500         rows one dispatch run enqueues at most
    OPD_REMINDER_LEAD_MINUTES               [1440, 120] reminder lead times of clinics without their own
    OPD_NO_SHOW_GRACE_MINUTES               30          booked, never checked in, ended this long ago: no-show
    OPD_EMAIL_TIMEOUT                       30          seconds an SMTP conversation may take
    OPD_SMS_BACKEND                         "notifications.backends.FileSmsBackend"
    OPD_SMS_FILE_DIR                        <BASE_DIR>/.data/sms
    OPD_SMS_FILE_HOLD_PATH                  ""          tests only: while this file exists, file SMS sends wait
    OPD_SMS_HTTP_URL / OPD_SMS_HTTP_TOKEN   ""          the provider endpoint and bearer token (HttpSmsBackend)
    OPD_SMS_HTTP_TIMEOUT                    10          seconds
    OPD_SMS_SENDER                          "OPD"       sender name or number
    OPD_ARCHIVE_RETENTION_DAYS              1826        about 5 years
    OPD_ARCHIVE_BATCH_SIZE                  200         root rows moved per transaction

The lease must outlast a send: it is longer than the send task's hard time limit (90 s) and than the
backends' own timeouts, so a worker that is still sending is never overtaken by a second one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULT_LEAD_MINUTES = (1440, 120)


def get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def queue() -> str | None:
    return get("OPD_NOTIFICATIONS_QUEUE", "") or None


def max_attempts() -> int:
    return int(get("OPD_NOTIFICATION_MAX_ATTEMPTS", 5))


def backoff_seconds(attempt: int) -> float:
    """Delay before attempt `attempt + 1`: base, 2 x base, 4 x base ... capped."""
    base = float(get("OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS", 30))
    cap = float(get("OPD_NOTIFICATION_RETRY_BACKOFF_MAX", 3600))
    return min(base * 2 ** max(attempt - 1, 0), cap)


def lease_seconds() -> float:
    return float(get("OPD_NOTIFICATION_LEASE_SECONDS", 300))


def redispatch_seconds() -> float:
    return float(get("OPD_NOTIFICATION_REDISPATCH_SECONDS", 120))


def dispatch_batch() -> int:
    return int(get("OPD_NOTIFICATION_DISPATCH_BATCH", 500))


def default_lead_minutes() -> list[int]:
    return [int(m) for m in get("OPD_REMINDER_LEAD_MINUTES", DEFAULT_LEAD_MINUTES)]


def email_timeout() -> float:
    return float(get("OPD_EMAIL_TIMEOUT", 30))


def sms_backend_path() -> str:
    return get("OPD_SMS_BACKEND", "notifications.backends.FileSmsBackend")


def sms_file_dir() -> Path:
    return Path(get("OPD_SMS_FILE_DIR", "") or Path(settings.BASE_DIR) / ".data" / "sms")


def sms_file_hold_path() -> Path | None:
    value = get("OPD_SMS_FILE_HOLD_PATH", "")
    return Path(value) if value else None


def sms_http_url() -> str:
    return get("OPD_SMS_HTTP_URL", "")


def sms_http_token() -> str:
    return get("OPD_SMS_HTTP_TOKEN", "")


def sms_http_timeout() -> float:
    return float(get("OPD_SMS_HTTP_TIMEOUT", 10))


def sms_sender() -> str:
    return get("OPD_SMS_SENDER", "OPD")
