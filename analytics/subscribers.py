"""Events in, cache marks and Celery tasks out: what analytics does when something below it changed.

Subscribed once each in AnalyticsConfig.ready(). Every change to an appointment publishes exactly one
event (a booking, cancellation or move its own; a queue step QUEUE_CHANGED), so a change marks its day
once: the cached month gets a new version (analytics.caching) and a closed day's stored figures are
marked stale (analytics.summaries). The services never import the tasks: a report asked for now is
published (REPORT_REQUESTED) and its build queued here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from opd.core import events
from scheduling.models import Appointment, Slot

from .caching import bump
from .services import REPORT_REQUESTED
from .summaries import daily_summaries_mark_changed
from .tasks import build_report


def on_appointment_event(
    *,
    appointment_id: int,
    clinic_id: int | None = None,
    day: dt.date | None = None,
    previous_slot_id: int | None = None,
    previous_clinic_id: int | None = None,
    previous_day: dt.date | None = None,
    **_: Any,
) -> None:
    """The appointment's (clinic, day) changed, and after a move the previous one too: read from the
    event when it says (every event the services publish does), from the rows otherwise."""
    changed: list[tuple[int, dt.date]] = []
    if clinic_id is not None and day is not None:
        changed.append((clinic_id, day))
    else:
        row = Appointment.objects.filter(pk=appointment_id).values_list("clinic_id", "slot__date").first()
        if row:
            changed.append(row)
    if previous_clinic_id is not None and previous_day is not None:
        changed.append((previous_clinic_id, previous_day))
    elif previous_slot_id:
        old = Slot.objects.filter(pk=previous_slot_id).values_list("clinic_id", "date").first()
        if old:
            changed.append(old)
    for changed_clinic, changed_day in dict.fromkeys(changed):
        bump(changed_clinic, changed_day)
    daily_summaries_mark_changed(appointment_id=appointment_id, days=list(dict.fromkeys(changed)))


def on_clinical_day_changed(*, clinic_id: int, day: dt.date, **_: Any) -> None:
    """Vitals written again or a care note re-categorised moved a figure of that day."""
    bump(clinic_id, day)
    daily_summaries_mark_changed(appointment_id=None, days=[(clinic_id, day)])


def on_report_requested(*, definition_id: int, request_id: str | None = None, **_: Any) -> None:
    # One task id per request: a second delivery's task continues (or finds finished) the same run.
    task_id = f"report-request-{request_id}" if request_id else None
    build_report.apply_async(kwargs={"definition_id": definition_id}, task_id=task_id)


def subscribe() -> None:
    for event in events.APPOINTMENT_EVENTS:
        events.subscribe(event, on_appointment_event)
    events.subscribe(events.CLINICAL_DAY_CHANGED, on_clinical_day_changed)
    events.subscribe(REPORT_REQUESTED, on_report_requested)
