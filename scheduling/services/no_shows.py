"""The no-show sweep: booked appointments that ended (plus a grace period) without a check-in."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from opd.core.errors import DomainError
from opd.core.models import Organization

from ..models import Appointment, AppointmentStatus
from .queue import appointment_mark_no_show

logger = logging.getLogger(__name__)


def appointments_sweep_no_shows(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Mark as no-show every appointment still booked (never checked in) whose end is more than
    OPD_NO_SHOW_GRACE_MINUTES ago. Returns how many were marked.

    Each goes through appointment_mark_no_show, which locks the row and re-checks its state:
    a patient checked in meanwhile, or a second sweep running at once, makes it refuse, and that
    appointment is skipped. Candidates are found per organization on the (organization, status, start)
    index (start < end, so `start < cutoff` bounds the range scan)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.OPD_NO_SHOW_GRACE_MINUTES)
    marked = 0
    for organization_id in Organization.objects.values_list("pk", flat=True):
        candidates = Appointment.objects.filter(
            organization_id=organization_id,
            status=AppointmentStatus.BOOKED,
            start__lt=cutoff,
            end__lt=cutoff,
        ).order_by("start")[: limit - marked]
        for appointment in candidates:
            try:
                appointment_mark_no_show(actor=None, appointment=appointment)
            except DomainError as exc:
                logger.info("no-show sweep skipped appointment %s: %s", appointment.pk, exc.message)
                continue
            marked += 1
        if marked >= limit:
            break
    return marked
