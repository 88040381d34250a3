"""Production: everything from the environment; no default secret, database or Redis."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    DATABASES,
    DEBUG,
    DEVELOPMENT_SECRET_KEY,
    INSTALLED_APPS,
    METRICS_TOKEN,
    OPD_AUDIT_KEY,
    OPD_AUDIT_KEY_IS_DEVELOPMENT,
    OPD_BLIND_INDEX_KEY,
    OPD_ENCRYPTION_KEYS,
    OPD_SITE_URL,
    REDIS_URL,
    SECRET_KEY,
    env,
)

# Demo seeding (published passwords) and the benchmark's unauthenticated ping have no place in production.
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "devtools"]

# Sessions, password-reset links and signed values all rest on this key: refuse what a guesser tries first.
WEAK_SECRET_KEYS = {"changeme", "change-me", "secret", "secretkey", "secret-key", "password", "django"}
if SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is required in production.")
if SECRET_KEY.lower() in WEAK_SECRET_KEYS or SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is a known weak value: generate a random one.")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be at least 50 characters with at least 5 distinct ones: generate a random one "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
# The audit trail's HMAC key: the same rules, and not the secret key (each can then be handled apart).
if OPD_AUDIT_KEY_IS_DEVELOPMENT:
    raise ImproperlyConfigured("OPD_AUDIT_KEY is required in production (the audit trail's HMAC key).")
if OPD_AUDIT_KEY.lower() in WEAK_SECRET_KEYS or len(OPD_AUDIT_KEY) < 50 or len(set(OPD_AUDIT_KEY)) < 5:
    raise ImproperlyConfigured(
        "OPD_AUDIT_KEY must be at least 50 characters with at least 5 distinct ones: generate a random one "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if OPD_AUDIT_KEY == SECRET_KEY:
    raise ImproperlyConfigured("OPD_AUDIT_KEY must differ from DJANGO_SECRET_KEY.")
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be false in production.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.mysql" or not REDIS_URL:
    raise ImproperlyConfigured("Production needs DATABASE_URL=mysql://... and REDIS_URL=redis://...")

# Encryption at rest: no generated development keys here; the keys come from the environment (a secret
# store), never from a file next to the data they protect.
OPD_DEVELOPMENT_KEY_FILE = None
if not OPD_ENCRYPTION_KEYS or not OPD_BLIND_INDEX_KEY:
    raise ImproperlyConfigured(
        "OPD_ENCRYPTION_KEYS and OPD_BLIND_INDEX_KEY are required in production: sensitive fields and "
        "attachments are encrypted at rest. Generate each key with python -c 'import base64, os; "
        "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'."
    )

# Every link in an e-mail or SMS is built on OPD_SITE_URL; the development default (or a placeholder host)
# would send patients to an address that is not this deployment.
SITE_URL_PLACEHOLDERS = {"127.0.0.1", "localhost", "0.0.0.0", "example.com", "example.org", "example.net"}  # noqa: S104  # names refused, not bound
if not (env("OPD_SITE_URL", default="") or env("OPD_BASE_URL", default="")):
    raise ImproperlyConfigured(
        "OPD_SITE_URL is required in production: the address patients and staff open, e.g. https://opd.clinic.org"
    )
if urlsplit(OPD_SITE_URL).hostname in SITE_URL_PLACEHOLDERS:
    raise ImproperlyConfigured(
        f"OPD_SITE_URL is a placeholder ({OPD_SITE_URL}): set the deployment's own address."
    )

# The metrics show every view's traffic and the deployment's tasks: a guessable token is no protection.
if METRICS_TOKEN and (len(METRICS_TOKEN) < 32 or len(set(METRICS_TOKEN)) < 5):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 characters with at least 5 distinct ones (or unset: no /metrics)."
    )

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
