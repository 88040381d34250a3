"""Periodic scheduling work. Tasks take ids or nothing, and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import appointments_sweep_no_shows, slots_generate

logger = logging.getLogger(__name__)


@shared_task(name="scheduling.roll_slot_horizon")
def roll_slot_horizon() -> dict:
    """Keep slots materialized for the rolling horizon (settings.OPD_SLOT_HORIZON_DAYS).

    Safe to run twice or on two workers at once: generation never creates a slot twice (unique
    doctor + start) and never deletes one."""
    report = slots_generate()
    logger.info(
        "slot horizon: %s doctors, %s created, %s reactivated, %s deactivated",
        report.doctors,
        report.created,
        report.reactivated,
        report.deactivated,
    )
    return {"doctors": report.doctors, "created": report.created, "deactivated": report.deactivated}


@shared_task(name="scheduling.sweep_no_shows", soft_time_limit=240, time_limit=300)
def sweep_no_shows() -> int:
    """Every few minutes: booked appointments that ended (plus grace) without a check-in become no-shows."""
    marked = appointments_sweep_no_shows()
    if marked:
        logger.info("marked %s appointments as no-show", marked)
    return marked
