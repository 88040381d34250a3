"""Appointment statistics per clinic-local day, computed by SQL aggregation and cached per day.

Every figure is an aggregate computed in the database (values/annotate with Count, Sum; a sorted
GROUP_CONCAT for the 90th percentile on MariaDB, a ranked window query on SQLite), a few queries per
request whatever the number of rows. Results are cached per (scope, filters, day); see analytics.caching.

Definitions (all per clinic-local day of the appointment's start):
* appointments: every appointment that day, whatever its status; one count per status as well.
* no_show_rate: no-shows / appointments not cancelled. cancellation_rate: cancelled / appointments.
* new_patients: completed visits that were the patient's first completed visit in the organization;
  returning_patients: the other completed visits.
* wait (check-in to start of the consultation) and consultation (start to completion), in minutes:
  average over appointments with both times; wait_p90 is PERCENTILE_CONT(0.9).
* capacity, seats_booked, utilization: seats of active slots that day, seats held, and their ratio.

Closed days (over in every zone) whose stored figures are current are read from analytics' summary
tables (DailyStat, DailyWait; see analytics.summaries), a few thousand rows for years of history; the
other days are computed from the appointments. Both ways give the same figures.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, Expression, F, Max, Min, Q, QuerySet, Sum

from opd.core.models import Clinic
from scheduling.models import Appointment, AppointmentStatus, Slot

from .. import caching
from ..expressions import LocalDate, SecondsBetween, SortedConcat, percentile_from_sorted_concat
from ..models import DailyStat, DailyWait, StatLevel, SummaryDay
from .scope import StatsScope, day_runs, days_between

# First visits are found either for the patients seen in the range (cheap for a short range or a small
# scope) or for every patient at once (a loose index scan of the (patient, status, start) index, ~0.5 s
# per million appointments whatever the range). Measured on the bench database (1.06M appointments):
# four clinics, 60 days 0.39 s vs 0.48 s, 90 days 3.0 s vs 0.50 s; one clinic, 90 days 0.17 s vs 0.52 s.
# So: the first way up to this many clinic-days (a department or doctor filter counts a quarter).
FIRST_VISIT_SHORT_CLINIC_DAYS = 240
STATUSES = [s.value for s in AppointmentStatus]
# The columns of each table, in the order the API, the page and the CSV files show them.
DAILY_COLUMNS = [
    "date",
    "appointments",
    *STATUSES,
    "no_show_rate",
    "cancellation_rate",
    "new_patients",
    "returning_patients",
    "wait_count",
    "wait_avg_minutes",
    "wait_p90_minutes",
    "consultation_count",
    "consultation_avg_minutes",
    "capacity",
    "seats_booked",
    "utilization",
]


# The figures of a day that add up across clinics, departments and doctors (DailyStat's columns).
ADDITIVE = [
    "appointments",
    *STATUSES,
    "new_patients",
    "wait_count",
    "wait_seconds",
    "consultation_count",
    "consultation_seconds",
    "capacity",
    "seats_booked",
]


def daily_statistics(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """One row per day of [date_from, date_to] (days without data are zeros), oldest first."""
    return caching.cached_days(
        "daily", scope, days_between(date_from, date_to), lambda d0, d1: _compute_daily(scope, d0, d1)
    )


def empty_day(day: dt.date) -> dict[str, Any]:
    row = {"date": day.isoformat(), "appointments": 0, **dict.fromkeys(STATUSES, 0)}
    row.update(
        new_patients=0,
        returning_patients=0,
        wait_count=0,
        wait_seconds=0,
        wait_p90_seconds=None,
        consultation_count=0,
        consultation_seconds=0,
        capacity=0,
        seats_booked=0,
    )
    return finish_day(row)


def finish_day(row: dict[str, Any]) -> dict[str, Any]:
    """Derived figures (rates, averages in minutes) from a day's counts and sums."""

    def ratio(num: float, den: float, digits: int = 4) -> float | None:
        return round(num / den, digits) if den else None

    row["no_show_rate"] = ratio(row["no_show"], row["appointments"] - row["cancelled"])
    row["cancellation_rate"] = ratio(row["cancelled"], row["appointments"])
    row["wait_avg_minutes"] = ratio(row["wait_seconds"], row["wait_count"] * 60, 2)
    p90 = row.get("wait_p90_seconds")
    row["wait_p90_minutes"] = None if p90 is None else round(float(p90) / 60, 2)
    row["consultation_avg_minutes"] = ratio(row["consultation_seconds"], row["consultation_count"] * 60, 2)
    row["utilization"] = ratio(row["seats_booked"], row["capacity"])
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The range's totals from its days (sums of counts; averages weighted by their counts). The p90 of a
    range is not derived from daily p90s, so the summary leaves it out."""
    total = {key: sum(row[key] for row in rows) for key in ADDITIVE}
    total["returning_patients"] = total[AppointmentStatus.COMPLETED] - total["new_patients"]
    total["date"] = None
    total["wait_p90_seconds"] = None
    return finish_day(total)


# Beyond this many separate runs of days to compute from appointments, one run spans them all.
MAX_LIVE_RUNS = 8


def _compute_daily(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict[str, Any]]:
    """Stored days from the summary tables, the others from the appointments."""
    stored = stored_days(scope, date_from, date_to)
    out: dict[dt.date, dict[str, Any]] = {}
    live = [d for d in days_between(date_from, date_to) if d not in stored]
    for first, last in day_runs(live, max_runs=MAX_LIVE_RUNS):
        out.update(_compute_live(scope, first, last))
    if stored:
        out.update(_read_stored(scope, stored))
    return out


def fresh_summary_q() -> Q:
    """SummaryDay rows whose figures are current: nothing changed since they were read."""
    return Q(changed_at__isnull=True) | Q(changed_at__lt=F("computed_from"))


def stored_days(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> set[dt.date]:
    """The days of the range whose stored figures are current for every clinic of the scope."""
    last_closed = caching.closed_before() - dt.timedelta(days=1)
    if not scope.clinics or date_from > last_closed:
        return set()
    rows = (
        SummaryDay.objects.filter(
            fresh_summary_q(),
            clinic_id__in=scope.clinic_ids,
            date__gte=date_from,
            date__lte=min(date_to, last_closed),
        )
        .values("date")
        .annotate(n=Count("clinic_id"))
        .filter(n=len(scope.clinics))
        .order_by()
    )
    return {row["date"] for row in rows}


def _stored_level(scope: StatsScope, *, use_filters: bool = True) -> tuple[str, bool]:
    """Which DailyStat rows answer the scope, and whether their wait p90 is the scope's: the doctor rows
    under a department or doctor filter; an organization's row when the scope is all of its clinics; a
    clinic's row for one clinic; the clinics' rows (the p90 then comes from DailyWait) otherwise."""
    if use_filters and (scope.department_id is not None or scope.doctor_id is not None):
        return StatLevel.DOCTOR, False
    if len(scope.organization_ids) == 1:
        everything = Clinic.objects.filter(organization_id=scope.organization_ids[0]).values_list(
            "pk", flat=True
        )
        if set(everything) == set(scope.clinic_ids):
            return StatLevel.ORGANIZATION, True
    return StatLevel.CLINIC, len(scope.clinics) == 1


def stored_rows(
    scope: StatsScope, days: set[dt.date], *, use_filters: bool = True
) -> tuple[QuerySet[Any], bool]:
    """The DailyStat rows that answer the scope over `days` (a superset: callers keep their days), and
    whether their wait p90 is the scope's. Without `use_filters`, a department or doctor filter is
    ignored (clinic-level figures)."""
    level, has_p90 = _stored_level(scope, use_filters=use_filters)
    rows = DailyStat.objects.filter(
        organization_id__in=scope.organization_ids, level=level, date__gte=min(days), date__lte=max(days)
    )
    if level != StatLevel.ORGANIZATION:
        rows = rows.filter(clinic_id__in=scope.clinic_ids)
    if level == StatLevel.DOCTOR and scope.department_id is not None:
        rows = rows.filter(department_id=scope.department_id)
    if level == StatLevel.DOCTOR and scope.doctor_id is not None:
        rows = rows.filter(doctor_id=scope.doctor_id)
    return rows, has_p90


def _read_stored(scope: StatsScope, days: set[dt.date]) -> dict[dt.date, dict[str, Any]]:
    """The days' figures from DailyStat at the scope's level; the p90 from the same rows where they are
    the scope's, else picked from DailyWait."""
    out = {day: empty_day(day) for day in days}
    rows, has_p90 = stored_rows(scope, days)
    sums: dict[str, Aggregate] = {key: Sum(key) for key in ADDITIVE}
    if has_p90:
        sums["wait_p90_seconds"] = Max("wait_p90_seconds")  # one row per day at this level
    for row in rows.values("date").annotate(**sums).order_by():
        if row["date"] in out:
            out[row["date"]].update({k: int(row[k] or 0) for k in ADDITIVE})
            if has_p90:
                out[row["date"]]["wait_p90_seconds"] = row["wait_p90_seconds"]
    if not has_p90:
        counts = {day: row["wait_count"] for day, row in out.items() if row["wait_count"]}
        for day, p90 in stored_wait_p90(scope, counts).items():
            out[day]["wait_p90_seconds"] = p90
    for row in out.values():
        row["returning_patients"] = row[AppointmentStatus.COMPLETED] - row["new_patients"]
        finish_day(row)
    return out


# Days per statement of stored_wait_p90 (SQLite allows 500 terms in a compound SELECT).
P90_DAYS_PER_QUERY = 400


def stored_wait_p90(scope: StatsScope, counts: dict[dt.date, int]) -> dict[dt.date, float]:
    """PERCENTILE_CONT(0.9) of each day's stored waits, knowing how many there are (`counts`).

    The two waits around rank 0.9 * (n - 1) are read straight off the (organization, date, seconds, ...)
    index from the top: one `ORDER BY seconds DESC LIMIT 2 OFFSET n - 1 - rank` per day, about a tenth
    of the day's entries and no sort, joined by UNION ALL into a few statements; the database
    interpolates between them. Sorting every wait of two years instead costs ~0.9 s per million.
    """
    table = connection.ops.quote_name(DailyWait._meta.db_table)
    where = ["organization_id IN ({})", "clinic_id IN ({})", "date = %s"]
    base: list[Any] = [scope.organization_ids, scope.clinic_ids]
    if scope.department_id is not None:
        where.append("department_id = %s")
    if scope.doctor_id is not None:
        where.append("doctor_id = %s")
    out: dict[dt.date, float] = {}
    days = sorted(counts)
    for start in range(0, len(days), P90_DAYS_PER_QUERY):
        parts: list[str] = []
        params: list[Any] = []
        for day in days[start : start + P90_DAYS_PER_QUERY]:
            rank = 0.9 * (counts[day] - 1)
            high = math.ceil(rank)
            fraction = rank - math.floor(rank)
            # Descending, the wait of rank `high` is at offset n - 1 - high; the next is rank high - 1.
            take = 2 if fraction else 1
            condition = " AND ".join(where).format(
                ", ".join(["%s"] * len(scope.organization_ids)), ", ".join(["%s"] * len(scope.clinic_ids))
            )
            parts.append(
                f"SELECT %s AS day, MIN(s) + %s * (MAX(s) - MIN(s)) AS p90 FROM ("  # noqa: S608 (fixed SQL, values as parameters)
                f"SELECT seconds AS s FROM {table} WHERE {condition} "
                f"ORDER BY seconds DESC LIMIT {take} OFFSET {counts[day] - 1 - high}) t{len(parts)}"
            )
            params += [day.isoformat(), fraction, *base[0], *base[1], day.isoformat()]
            params += [v for v in (scope.department_id, scope.doctor_id) if v is not None]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            out.update({_as_date(day): float(p90) for day, p90 in cursor.fetchall() if p90 is not None})
    return out


def _compute_live(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, dict[str, Any]]:
    out = {day: empty_day(day) for day in days_between(date_from, date_to)}
    if not scope.clinics:
        return out
    for (day,), values in _appointment_aggregates(scope, date_from, date_to).items():
        out[day].update(values)
    for day, p90 in _wait_p90(scope, date_from, date_to).items():
        out[day]["wait_p90_seconds"] = p90
    for (day,), count in _new_patient_counts(scope, date_from, date_to).items():
        out[day]["new_patients"] = count
    for (day,), values in _slot_aggregates(scope, date_from, date_to).items():
        out[day].update(values)
    for row in out.values():
        row["returning_patients"] = row[AppointmentStatus.COMPLETED] - row["new_patients"]
        finish_day(row)
    return out


def _appointments_by_day(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> QuerySet[Appointment]:
    """The scope's appointments between the UTC bounds of [date_from, date_to], annotated with their
    clinic-local `day`.

    The bounds hold every clinic's days whole; rows of the day before or after that some zones add at
    the edges form groups of their own, which callers drop (`_in_range`). Filtering on `day` instead would
    evaluate the day expression twice more per row.
    """
    lo, hi = scope.utc_bounds(date_from, date_to)
    return (
        Appointment.objects.filter(scope.appointment_q(), start__gte=lo, start__lt=hi)
        .annotate(day=LocalDate("start", zones=scope.zones, start=lo, end=hi))
        .order_by()
    )


WAIT = ("checked_in_at", "started_at")
CONSULTATION = ("started_at", "completed_at")


def _appointment_aggregates(
    scope: StatsScope, date_from: dt.date, date_to: dt.date, by: tuple[str, ...] = ()
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Counts per status and the sums behind the averages, per (day, *by): grouped by (day, *by, status)
    in SQL, which is about half the cost of one conditional count per status over a million rows; the
    few rows per group are then laid side by side."""
    wait, consultation = SecondsBetween(*WAIT), SecondsBetween(*CONSULTATION)
    grouped = (
        _appointments_by_day(scope, date_from, date_to)
        .values("day", *by, "status")
        .annotate(
            n=Count("id"),
            wait_count=Count(wait),
            wait_seconds=Sum(wait),
            consultation_count=Count(consultation),
            consultation_seconds=Sum(consultation),
        )
    )
    sums = ("wait_count", "wait_seconds", "consultation_count", "consultation_seconds")
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in grouped:
        day = _as_date(row["day"])
        if not date_from <= day <= date_to:
            continue
        group = out.setdefault((day, *(row[f] for f in by)), {"appointments": 0, **dict.fromkeys(sums, 0)})
        group[row["status"]] = row["n"]
        group["appointments"] += row["n"]
        for key in sums:
            group[key] += int(row[key] or 0)
    return out


def wait_rows(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> QuerySet[Any, tuple[Any, ...]]:
    """(day, organization, clinic, department, doctor, seconds) of every measured wait in the scope's
    UTC bounds (callers keep the days in range): what DailyWait stores."""
    return (
        _appointments_by_day(scope, date_from, date_to)
        .filter(checked_in_at__isnull=False, started_at__isnull=False)
        .annotate(seconds=SecondsBetween(*WAIT))
        .values_list("day", "organization_id", "clinic_id", "department_id", "doctor_id", "seconds")
    )


def _wait_p90(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> dict[dt.date, float]:
    rows = _appointments_by_day(scope, date_from, date_to).filter(
        checked_in_at__isnull=False, started_at__isnull=False
    )
    return _in_range(_p90_by_day(rows, SecondsBetween(*WAIT)), date_from, date_to)


def _p90_by_day(rows: QuerySet[Any], wait: Expression) -> dict[dt.date, float]:
    """PERCENTILE_CONT(0.9) of `wait` over each `day` of `rows` (a queryset with a `day`), in SQL."""
    if connection.vendor != "mysql":
        return _p90_ranked(rows, wait)
    # MariaDB/MySQL: each day's waits sorted into one string by GROUP_CONCAT, the two values around the
    # 90th percentile picked out of it and interpolated by the outer query; the lists never leave the
    # database. (PERCENTILE_CONT as a window function needs a sort of every row: 4x slower here.)
    grouped = rows.values("day").annotate(wait_count=Count("id"), waits=SortedConcat(wait))
    sql, params = grouped.query.sql_with_params()
    p90 = percentile_from_sorted_concat("t.waits", "t.wait_count", 0.9)
    outer = f"SELECT t.day, {p90} FROM ({sql}) t"  # noqa: S608 (Django's SQL, with parameters)
    with connection.cursor() as cursor:
        # A day's waits joined as text; the server default (1 MB) would hold ~150k of them.
        cursor.execute("SET SESSION group_concat_max_len = 67108864")
        cursor.execute(outer, params)
        return {_as_date(day): float(value) for day, value in cursor.fetchall()}


def _in_range(values: dict[dt.date, Any], date_from: dt.date, date_to: dt.date) -> dict[dt.date, Any]:
    return {day: value for day, value in values.items() if date_from <= day <= date_to}


def _floor(sql: str) -> str:
    # MariaDB's CAST(... AS INTEGER) rounds; SQLite may lack FLOOR() (an optional extension) but its CAST
    # truncates, which is the floor for the non-negative ranks used here.
    return f"FLOOR({sql})" if connection.vendor == "mysql" else f"CAST({sql} AS INTEGER)"


def _p90_ranked(qs: QuerySet[Any], wait: Expression) -> dict[dt.date, float]:
    """Portable PERCENTILE_CONT(0.9) per day: rank the waits per day with window functions, keep the two
    ranks around 0.9 * (n - 1), interpolate. Used where the database has no sorted GROUP_CONCAT."""
    inner = qs.annotate(wait=wait).values("day", "wait")
    sql, params = inner.query.sql_with_params()
    k = _floor("0.9 * (n - 1)")
    fraction = f"0.9 * (MAX(n) - 1) - {_floor('0.9 * (MAX(n) - 1)')}"
    outer = f"""
        SELECT day, MIN(wait) + ({fraction}) * (MAX(wait) - MIN(wait))
        FROM (
            SELECT day, wait,
                   ROW_NUMBER() OVER (PARTITION BY day ORDER BY wait) - 1 AS rank0,
                   COUNT(*) OVER (PARTITION BY day) AS n
            FROM ({sql}) w
        ) r
        WHERE rank0 = {k} OR rank0 = {k} + 1
        GROUP BY day
    """  # noqa: S608 (the inner SQL is Django's, with parameters)
    with connection.cursor() as cursor:
        cursor.execute(outer, params)
        return {_as_date(day): float(value) for day, value in cursor.fetchall()}


def _new_patient_counts(
    scope: StatsScope, date_from: dt.date, date_to: dt.date, by: tuple[str, ...] = ()
) -> dict[tuple[Any, ...], int]:
    """Completed visits in scope that were the patient's first completed visit (anywhere in the
    organization), per (day, *by). A patient's first visit is MIN(start) over their completed visits, read
    from the (patient, status, start) index."""
    lo, hi = scope.utc_bounds(date_from, date_to)
    visits = (
        _appointments_by_day(scope, date_from, date_to)
        .filter(status=AppointmentStatus.COMPLETED)
        .values("day", "patient_id", "start", *by)
        .order_by()
    )
    group = ", ".join(["v.day", *(f"v.{field}" for field in by)])
    firsts: QuerySet[Any, Any] = Appointment.objects.filter(status=AppointmentStatus.COMPLETED).order_by()
    clinic_days = ((date_to - date_from).days + 1) * len(scope.clinics)
    if scope.department_id is not None or scope.doctor_id is not None:
        clinic_days //= 4
    short = clinic_days <= FIRST_VISIT_SHORT_CLINIC_DAYS
    if short:
        firsts = firsts.filter(patient_id__in=visits.values("patient_id"))  # only the patients seen
    firsts = firsts.values("patient_id").annotate(first=Min("start")).filter(first__gte=lo, first__lt=hi)
    visits_sql, visits_params = visits.query.sql_with_params()
    firsts_sql, firsts_params = firsts.query.sql_with_params()
    on = "f.patient_id = v.patient_id AND f.first = v.start"  # the visit *is* its patient's first
    if short:
        sql = f"SELECT {group}, COUNT(*) FROM ({visits_sql}) v INNER JOIN ({firsts_sql}) f ON {on} GROUP BY {group}"  # noqa: S608 (Django's SQL, with parameters)
        params = [*visits_params, *firsts_params]
    else:
        # Every patient's first visit (one loose index scan), then each one's appointment found through
        # the (patient, start) index: ~200k lookups rather than matching a million visits against them
        # (MariaDB merges the visits' derived table; STRAIGHT_JOIN keeps this order). Measured on the bench
        # database: 1.0 s instead of 2.0 s for two years of four clinics.
        join = "STRAIGHT_JOIN" if connection.vendor == "mysql" else "INNER JOIN"
        sql = (
            f"SELECT {group}, COUNT(*) FROM ({firsts_sql}) f {join} ({visits_sql}) v ON {on} GROUP BY {group}"  # noqa: S608
        )
        params = [*firsts_params, *visits_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [(_as_date(day), *rest) for day, *rest in cursor.fetchall()]
    return {tuple(row[:-1]): row[-1] for row in rows if date_from <= row[0] <= date_to}


def _slot_aggregates(
    scope: StatsScope, date_from: dt.date, date_to: dt.date, by: tuple[str, ...] = ()
) -> dict[tuple[Any, ...], dict[str, Any]]:
    lo, hi = scope.utc_bounds(date_from, date_to)
    rows = (
        Slot.objects.filter(scope.appointment_q(), is_active=True, start__gte=lo, start__lt=hi)
        .values("date", *by)
        .annotate(capacity=Sum("capacity"), seats_booked=Sum("booked_count"))
        .order_by()
    )
    return {
        (row["date"], *(row[f] for f in by)): {
            "capacity": int(row["capacity"] or 0),
            "seats_booked": int(row["seats_booked"] or 0),
        }
        for row in rows
        if date_from <= row["date"] <= date_to
    }


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
