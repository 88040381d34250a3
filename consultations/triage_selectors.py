"""Reads of triage for the pages: the latest NEWS2 of each appointment on a queue (from the nurse's triage
or the doctor's consultation vitals, whichever is newer) and a clinic's waiting patients for the triage
page. Two queries whatever the number of rows. Callers have already scoped the appointments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from opd.core.models import Clinic
from scheduling.models import Appointment, AppointmentStatus

from . import news2
from .models import Consultation, News2Band, TriageObservation
from .services import is_rescore_due
from .services.news2_alerts import alert_payload


@dataclass(frozen=True)
class LatestNews2:
    """The newest scored (or partly recorded) set of vitals of an appointment."""

    source: str  # "triage" or "consultation"
    recorded_at: dt.datetime
    recorded_by: str
    total: int | None
    band: str
    response: news2.ClinicalResponse | None
    rescore_due: bool
    observation: TriageObservation | None

    @property
    def band_label(self) -> str:
        return News2Band(self.band).label if self.band else ""

    @property
    def is_alerting(self) -> bool:
        return self.response is not None and self.response.level in (news2.URGENT, news2.EMERGENCY)


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def latest_news2(appointment_ids: list[int], *, now: dt.datetime | None = None) -> dict[int, LatestNews2]:
    now = now or timezone.now()
    found: dict[int, LatestNews2] = {}
    if not appointment_ids:
        return found
    for obs in (
        TriageObservation.objects.filter(appointment_id__in=appointment_ids)
        .select_related("recorded_by")
        .order_by("appointment_id", "-recorded_at", "-id")
    ):
        if obs.appointment_id in found:
            continue
        found[obs.appointment_id] = LatestNews2(
            source="triage",
            recorded_at=obs.recorded_at,
            recorded_by=_name(obs.recorded_by),
            total=obs.news2_total,
            band=obs.news2_band,
            response=obs.news2_response,
            rescore_due=is_rescore_due(obs, now=now),
            observation=obs,
        )
    for consultation in Consultation.objects.filter(
        appointment_id__in=appointment_ids, vitals_recorded_at__isnull=False
    ).select_related("doctor__user"):
        earlier = found.get(consultation.appointment_id)
        recorded_at = consultation.vitals_recorded_at
        if recorded_at is None or (earlier is not None and earlier.recorded_at >= recorded_at):
            continue  # the triage set is newer, or the consultation opened with it and kept it
        found[consultation.appointment_id] = LatestNews2(
            source="consultation",
            recorded_at=recorded_at,
            recorded_by=_name(consultation.doctor.user),
            total=consultation.news2_total,
            band=consultation.news2_band,
            response=consultation.news2_response,
            rescore_due=False,  # with the doctor: the consultation is where vitals are taken now
            observation=None,
        )
    return found


def decorate_with_news2(appointments: list[Appointment]) -> None:
    """The queue pages' row decorator (registered with scheduling in ConsultationsConfig.ready())."""
    latest = latest_news2([appt.pk for appt in appointments])
    for appt in appointments:
        appt.news2 = latest.get(appt.pk)  # type: ignore[attr-defined]  # shown by the templates


def waiting_for_triage(clinic: Clinic, *, now: dt.datetime | None = None) -> list[Appointment]:
    """The clinic's checked-in patients today (waiting, or called and on their way), in queue order,
    each with `.news2` (or None): what the triage page lists."""
    now = now or timezone.now()
    appointments = list(
        Appointment.objects.filter(clinic=clinic, status=AppointmentStatus.CHECKED_IN)
        .select_related("patient", "doctor__user", "department", "clinic")
        .order_by("called_at", "queue_key", "pk")
    )
    latest = latest_news2([appt.pk for appt in appointments], now=now)
    for appt in appointments:
        appt.news2 = latest.get(appt.pk)  # type: ignore[attr-defined]
    return appointments


def active_news2_alerts(appointments: list[Appointment]) -> list[dict[str, Any]]:
    """The queue snapshot's alert source (registered with scheduling in ConsultationsConfig.ready()):
    each row whose latest NEWS2 asks for an urgent or emergency response, as the live alert said it when
    the score was recorded (services.news2_alerts), stamped with the time of the vitals."""
    latest = latest_news2([appt.pk for appt in appointments])
    found = []
    for appt in appointments:
        score = latest.get(appt.pk)
        if score is None or not score.is_alerting or score.response is None:
            continue
        alert = alert_payload(
            kind="news2",
            appointment=appt,
            level=score.response.level,
            title=score.response.title,
            action=score.response.action,
            news2_total=score.total,
            news2_band=score.band,
            source=score.source,
            at=score.recorded_at.isoformat(),
        )
        found.append({"appointment_id": appt.pk, "alert": alert})
    return found
