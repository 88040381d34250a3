"""Housekeeping of the core: tasks take nothing or ids and call a service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from .services import access_grants_purge, idempotency_records_purge
from .services.audit_chain import audit_seal_all, audit_verify_and_report
from .services.outbox import outbox_prune, outbox_relay_once


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return idempotency_records_purge(older_than=dt.timedelta(hours=settings.OPD_IDEMPOTENCY_KEY_HOURS))


@shared_task(name="core.purge_access_grants")
def purge_access_grants() -> int:
    return access_grants_purge()


@shared_task(name="core.audit_seal")
def audit_seal() -> int:
    """Every minute: chain the audit events written since (opd.core.services.audit_chain)."""
    return audit_seal_all()


# Walks every row: longer than the default limit, shorter than the broker's visibility timeout (an hour),
# after which an acked-late task would be handed to a second worker.
@shared_task(name="core.audit_verify_daily", soft_time_limit=3000, time_limit=3300)
def audit_verify_daily() -> int:
    """Daily: verify every chain and mail the organizations' admins; answers how many chains failed."""
    return sum(not report.ok for report in audit_verify_and_report())


# A beat entry every OPD_OUTBOX_RELAY_INTERVAL_SECONDS; a run shorter than the rows' back-off (their lease).
@shared_task(name="core.outbox_relay", soft_time_limit=25, time_limit=30)
def outbox_relay() -> int:
    """Deliver the domain events whose process did not (opd.core.outbox); answers how many it delivered."""
    return outbox_relay_once().delivered


@shared_task(name="core.outbox_prune")
def outbox_prune_delivered() -> int:
    return outbox_prune(older_than=dt.timedelta(hours=settings.OPD_OUTBOX_RETENTION_HOURS))
