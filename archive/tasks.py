"""The nightly archival job. Beat (django-celery-beat) runs it; it calls the service."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import archival_run

logger = logging.getLogger(__name__)


@shared_task(name="archive.archive_old_records", soft_time_limit=1700, time_limit=1800)
def archive_old_records() -> dict:
    """Nightly: move rows past the retention into the archive, stopping between batches after 25 minutes
    (the next night carries on)."""
    report = archival_run(max_seconds=1500)
    logger.info("archived %s groups, %s rows: %s", report.groups, report.total, dict(report.rows))
    return {"groups": report.groups, "rows": dict(report.rows)}
