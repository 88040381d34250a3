"""Periodic work of the clinical record. Tasks take ids or nothing, and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import triage_rescore_reminders

logger = logging.getLogger(__name__)


@shared_task(name="consultations.news2_rescore_reminders", soft_time_limit=50, time_limit=55)
def news2_rescore_reminders() -> int:
    """Every minute: remind the clinics' triage pages of waiting patients whose observations are due."""
    sent = triage_rescore_reminders()
    if sent:
        logger.info("NEWS2 re-score reminders sent for %s waiting patients", sent)
    return sent
