"""Celery tasks of the analytics app: they take ids, claim their work and call a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import report_run_build, report_run_claim, report_run_fail
from .summaries import daily_summaries_refresh_due

MAX_RETRIES = 3
# The first retry's delay; each next one doubles it.
RETRY_SECONDS = getattr(settings, "ANALYTICS_REPORT_RETRY_SECONDS", 60)


@shared_task(bind=True, name="analytics.build_report", max_retries=MAX_RETRIES, acks_late=True)
def build_report(self, definition_id: int) -> int | None:
    """Build, store and e-mail a report (beat runs it on the definition's crontab).

    A failure is recorded on the run with its error and retried with backoff (1, 2, 4 minutes by default); retries
    and redeliveries keep the task id, so they continue the same run. Returns the run id.
    """
    run = report_run_claim(definition_id=definition_id, task_id=self.request.id)
    if run is None:
        return None
    try:
        report_run_build(run=run)
    except Exception as exc:
        will_retry = self.request.retries < self.max_retries
        report_run_fail(run=run, error=exc, will_retry=will_retry)
        if will_retry:
            raise self.retry(exc=exc, countdown=RETRY_SECONDS * 2**self.request.retries) from exc
        raise
    return run.pk


@shared_task(name="analytics.refresh_summaries", soft_time_limit=1500, time_limit=1800)
def refresh_summaries() -> int:
    """Every few minutes: store the daily figures of closed days that have none yet or changed since.
    Returns how many clinic-days were stored (after a quiet night: one per clinic)."""
    return daily_summaries_refresh_due()
