"""NEWS2 bands seen and care notes written, per clinic-local day (counts by SQL aggregation, cached)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count

from consultations.models import CareCategory, CareNote, Consultation, News2Band

from .. import caching
from ..expressions import LocalDate
from .daily import _as_date
from .scope import StatsScope, days_between

NEWS2_COLUMNS = ["date", "total", *News2Band.values]
CARE_NOTE_COLUMNS = ["date", "total", *CareCategory.values]


def news2_daily(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Consultations whose vitals were recorded that day, by NEWS2 clinical-risk band."""
    return caching.cached_days(
        "news2", scope, days_between(date_from, date_to), lambda d0, d1: _compute_news2(scope, d0, d1)
    )


def care_notes_daily(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Care notes written that day, by category. Care notes belong to clinics, not departments; with a
    doctor filter (and for doctors themselves) they are the notes that doctor wrote."""
    return caching.cached_days(
        "care_notes",
        scope,
        days_between(date_from, date_to),
        lambda d0, d1: _compute_care_notes(scope, d0, d1),
        closed_seconds=caching.UNEVENTED_CLOSED_DAY_SECONDS,
    )


def _compute_news2(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict]:
    bands = list(News2Band.values)
    out = {
        day: {"date": day.isoformat(), "total": 0, **dict.fromkeys(bands, 0)}
        for day in days_between(date_from, date_to)
    }
    if not scope.clinics:
        return out
    lo, hi = scope.utc_bounds(date_from, date_to)
    qs = Consultation.objects.filter(
        organization_id__in=scope.organization_ids,
        clinic_id__in=scope.clinic_ids,
        vitals_recorded_at__gte=lo,
        vitals_recorded_at__lt=hi,
        news2_band__in=bands,
    )
    if scope.department_id is not None:
        qs = qs.filter(appointment__department_id=scope.department_id)
    if scope.doctor_id is not None:
        qs = qs.filter(doctor_id=scope.doctor_id)
    rows = (
        qs.annotate(day=LocalDate("vitals_recorded_at", zones=scope.zones, start=lo, end=hi))
        .values("day", "news2_band")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        day = _as_date(row["day"])
        if day in out:
            out[day][row["news2_band"]] = row["n"]
            out[day]["total"] += row["n"]
    return out


def _compute_care_notes(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict]:
    categories = list(CareCategory.values)
    out = {
        day: {"date": day.isoformat(), "total": 0, **dict.fromkeys(categories, 0)}
        for day in days_between(date_from, date_to)
    }
    if not scope.clinics:
        return out
    lo, hi = scope.utc_bounds(date_from, date_to)
    qs = CareNote.objects.filter(
        organization_id__in=scope.organization_ids,
        clinic_id__in=scope.clinic_ids,
        created_at__gte=lo,  # the (organization, clinic, created_at) index; `date` is exact
        created_at__lt=hi,
        date__gte=date_from,
        date__lte=date_to,
    )
    if scope.doctor_id is not None:
        qs = qs.filter(author__doctor__pk=scope.doctor_id)
    for row in qs.values("date", "category").annotate(n=Count("id")).order_by():
        out[row["date"]][row["category"]] = row["n"]
        out[row["date"]]["total"] += row["n"]
    return out
