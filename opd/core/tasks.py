"""Housekeeping of the core: tasks take nothing or ids and call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from .services import idempotency_records_purge


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return idempotency_records_purge(older_than=dt.timedelta(hours=settings.OPD_IDEMPOTENCY_KEY_HOURS))
