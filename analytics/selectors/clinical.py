"""NEWS2 bands seen and care notes written, per clinic-local day (counts by SQL aggregation, cached)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Sum

from consultations.models import CareCategory, CareNote, Consultation, News2Band

from .. import caching
from ..expressions import LocalDate
from . import daily
from .daily import _as_date
from .scope import StatsScope, day_runs, days_between

NEWS2_COLUMNS = ["date", "total", *News2Band.values]
CARE_NOTE_COLUMNS = ["date", "total", *CareCategory.values]


def news2_daily(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """Consultations whose vitals were recorded that day, by NEWS2 clinical-risk band."""
    return caching.cached_days(
        "news2", scope, days_between(date_from, date_to), lambda d0, d1: _compute_news2(scope, d0, d1)
    )


def care_notes_daily(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """Care notes written that day, by category. Care notes belong to clinics, not departments; with a
    doctor filter (and for doctors themselves) they are the notes that doctor wrote."""
    return caching.cached_days(
        "care_notes",
        scope,
        days_between(date_from, date_to),
        lambda d0, d1: _compute_care_notes(scope, d0, d1),
    )


# The stored columns of each figure family (analytics.models.DailyStat).
NEWS2_STORED = {band: f"news2_{band}" for band in News2Band.values}
CARE_STORED = {category: f"care_{category}" for category in CareCategory.values}


def _compute_news2(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict[str, Any]]:
    return _stored_or_live(scope, date_from, date_to, NEWS2_STORED, _news2_live, by_level=True)


def _compute_care_notes(
    scope: StatsScope, date_from: dt.date, date_to: dt.date
) -> dict[dt.date, dict[str, Any]]:
    if scope.doctor_id is not None:
        # A doctor's own notes are not among the stored figures (those are per clinic).
        return _care_notes_live(scope, date_from, date_to)
    return _stored_or_live(scope, date_from, date_to, CARE_STORED, _care_notes_live, by_level=False)


def _stored_or_live(
    scope: StatsScope,
    date_from: dt.date,
    date_to: dt.date,
    columns: dict[str, str],
    live: Callable[[StatsScope, dt.date, dt.date], dict[dt.date, dict[str, Any]]],
    *,
    by_level: bool,
) -> dict[dt.date, dict[str, Any]]:
    """Stored days summed from DailyStat's `columns`, the others computed by `live`. Care notes belong
    to clinics, so they are read from clinic (or organization) rows even under a department filter."""
    stored = daily.stored_days(scope, date_from, date_to)
    out: dict[dt.date, dict[str, Any]] = {}
    rest = [d for d in days_between(date_from, date_to) if d not in stored]
    for first, last in day_runs(rest, max_runs=daily.MAX_LIVE_RUNS):
        out.update(live(scope, first, last))
    if stored:
        rows, _ = daily.stored_rows(scope, stored, use_filters=by_level)
        sums = rows.values("date").annotate(**{column: Sum(column) for column in columns.values()}).order_by()
        empty = {day: _empty_counts(day, list(columns)) for day in stored}
        for row in sums:
            if row["date"] in empty:
                counts = empty[row["date"]]
                for name, column in columns.items():
                    counts[name] = int(row[column] or 0)
                counts["total"] = sum(counts[name] for name in columns)
        out.update(empty)
    return out


def _empty_counts(day: dt.date, names: list[str]) -> dict[str, Any]:
    return {"date": day.isoformat(), "total": 0, **dict.fromkeys(names, 0)}


def news2_counts(
    scope: StatsScope, date_from: dt.date, date_to: dt.date, by: tuple[str, ...] = ()
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Consultations with a NEWS2 band per (local day of the vitals, *by), by band (one GROUP BY)."""
    if not scope.clinics:
        return {}
    lo, hi = scope.utc_bounds(date_from, date_to)
    qs = Consultation.objects.filter(
        organization_id__in=scope.organization_ids,
        clinic_id__in=scope.clinic_ids,
        vitals_recorded_at__gte=lo,
        vitals_recorded_at__lt=hi,
        news2_band__in=News2Band.values,
    )
    if scope.department_id is not None:
        qs = qs.filter(appointment__department_id=scope.department_id)
    if scope.doctor_id is not None:
        qs = qs.filter(doctor_id=scope.doctor_id)
    rows = (
        qs.annotate(day=LocalDate("vitals_recorded_at", zones=scope.zones, start=lo, end=hi))
        .values("day", *by, "news2_band")
        .annotate(n=Count("id"))
        .order_by()
    )
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in rows:
        day = _as_date(row["day"])
        if date_from <= day <= date_to:
            out.setdefault((day, *(row[f] for f in by)), {})[row["news2_band"]] = row["n"]
    return out


def _news2_live(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict[str, Any]]:
    bands = list(News2Band.values)
    out = {day: _empty_counts(day, bands) for day in days_between(date_from, date_to)}
    for (day,), counts in news2_counts(scope, date_from, date_to).items():
        out[day].update(counts)
        out[day]["total"] = sum(counts.values())
    return out


def care_note_counts(
    scope: StatsScope, date_from: dt.date, date_to: dt.date
) -> dict[dt.date, dict[str, int]]:
    """Care notes per clinic-local day, by category (one GROUP BY)."""
    if not scope.clinics:
        return {}
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
    out: dict[dt.date, dict[str, int]] = {}
    for row in qs.values("date", "category").annotate(n=Count("id")).order_by():
        out.setdefault(row["date"], {})[row["category"]] = row["n"]
    return out


def _care_notes_live(
    scope: StatsScope, date_from: dt.date, date_to: dt.date
) -> dict[dt.date, dict[str, Any]]:
    categories = list(CareCategory.values)
    out = {day: _empty_counts(day, categories) for day in days_between(date_from, date_to)}
    for day, counts in care_note_counts(scope, date_from, date_to).items():
        out[day].update(counts)
        out[day]["total"] = sum(counts.values())
    return out
