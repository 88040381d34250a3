"""The archive's settings, read at call time so tests can override them."""

from __future__ import annotations

from django.conf import settings


def retention_days() -> int:
    return int(getattr(settings, "OPD_ARCHIVE_RETENTION_DAYS", 1826))


def batch_size() -> int:
    return int(getattr(settings, "OPD_ARCHIVE_BATCH_SIZE", 200))
