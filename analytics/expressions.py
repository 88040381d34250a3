"""SQL expressions the statistics need, for MariaDB/MySQL and SQLite alike.

Appointments carry UTC instants; statistics are per clinic-local day. Joining each appointment to its slot
(which knows the local `date`) costs ~2 s per million rows on MariaDB, so the local day is computed from
`start` instead: the clinic's UTC offset is piecewise constant (it changes at DST transitions), so for the
queried range it is a small CASE on the instant, found here in Python. No time-zone tables are needed in
the database.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from django.db.models import Aggregate, DateField, DateTimeField, F, Func, IntegerField, TextField, Value

UTC = dt.UTC


def _offset_minutes(zone: ZoneInfo, at: dt.datetime) -> int:
    return int(at.astimezone(zone).utcoffset().total_seconds() // 60)  # type: ignore[union-attr]  # aware: has one


def offset_periods(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """The zone's UTC offset over [start, end) as [(from_instant, minutes)], the first from `start`.

    Transitions are found by comparing offsets a day apart and bisecting to the second in between.
    """
    periods = [(start, _offset_minutes(zone, start))]
    day = dt.timedelta(days=1)
    at = start
    while at < end:
        nxt = min(at + day, end)
        if _offset_minutes(zone, nxt) != periods[-1][1]:
            lo, hi = at, nxt  # the offset changes in (lo, hi]
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _offset_minutes(zone, mid) == periods[-1][1]:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            periods.append((hi, _offset_minutes(zone, hi)))
        at = nxt
    return periods


class LocalDate(Func):
    """The clinic-local calendar day of a UTC datetime column, for rows of clinics in several zones.

    `zones` maps clinic id -> zone; offsets are exact between `start` and `end` (the query's UTC range).
    """

    output_field = DateField()

    def __init__(
        self,
        field: str,
        *,
        zones: dict[int, ZoneInfo],
        start: dt.datetime,
        end: dt.datetime,
        clinic_field: str = "clinic_id",
    ):
        super().__init__(F(field), F(clinic_field))
        by_zone: dict[str, list[int]] = {}
        for clinic_id, zone in sorted(zones.items()):
            by_zone.setdefault(zone.key, []).append(clinic_id)
        self.zone_periods = [
            (clinic_ids, offset_periods(ZoneInfo(key), start, end)) for key, clinic_ids in by_zone.items()
        ]

    def _offset_sql(self, compiler, connection, column: str) -> tuple[str, list]:
        def for_zone(periods: list[tuple[dt.datetime, int]]) -> tuple[str, list]:
            if len(periods) == 1:
                return "%s", [periods[0][1]]
            sql, params = ["CASE"], []
            for (_, minutes), (until, _) in itertools.pairwise(periods):
                until_sql, until_params = compiler.compile(Value(until, output_field=DateTimeField()))
                sql.append(f"WHEN {column} < {until_sql} THEN %s")
                params += [*until_params, minutes]
            sql.append("ELSE %s END")
            params.append(periods[-1][1])
            return " ".join(sql), params

        if len(self.zone_periods) == 1:
            return for_zone(self.zone_periods[0][1])
        clinic_sql, clinic_params = compiler.compile(self.source_expressions[1])
        sql, params = ["CASE"], []
        for clinic_ids, periods in self.zone_periods:
            zone_sql, zone_params = for_zone(periods)
            sql.append(f"WHEN {clinic_sql} IN ({', '.join(['%s'] * len(clinic_ids))}) THEN {zone_sql}")
            params += [*clinic_params, *clinic_ids, *zone_params]
        sql.append("ELSE 0 END")
        return " ".join(sql), params

    def _constant_offset(self) -> int | None:
        offsets = {minutes for _, periods in self.zone_periods for _, minutes in periods}
        return offsets.pop() if len(offsets) == 1 else None

    def _column(self, compiler) -> str:
        column, params = compiler.compile(self.source_expressions[0])
        if params:  # the CASE repeats the column; a plain column has no params to repeat
            raise NotImplementedError("LocalDate needs a plain column")
        return column

    def as_mysql(self, compiler, connection, **extra):
        column = self._column(compiler)
        if self._constant_offset() == 0:
            return f"DATE({column})", []
        offset, params = self._offset_sql(compiler, connection, column)
        return f"DATE(DATE_ADD({column}, INTERVAL ({offset}) MINUTE))", params

    def as_sqlite(self, compiler, connection, **extra):
        column = self._column(compiler)
        offset, params = self._offset_sql(compiler, connection, column)
        return f"date({column}, printf('%%+d minutes', {offset}))", params

    def as_sql(self, compiler, connection, **extra):  # other backends: not supported here
        raise NotImplementedError(f"LocalDate has no SQL for {connection.vendor}")


class SecondsBetween(Func):
    """Whole seconds from `start` to `end` (NULL when either is NULL)."""

    output_field = IntegerField()

    def __init__(self, start: str, end: str):
        super().__init__(F(start), F(end))

    def as_mysql(self, compiler, connection, **extra):
        (start, sp), (end, ep) = (compiler.compile(e) for e in self.source_expressions)
        return f"TIMESTAMPDIFF(SECOND, {start}, {end})", [*sp, *ep]

    def as_sqlite(self, compiler, connection, **extra):
        (start, sp), (end, ep) = (compiler.compile(e) for e in self.source_expressions)
        return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400) AS INTEGER)", [*ep, *sp]


class SortedConcat(Aggregate):
    """MariaDB/MySQL: the group's non-NULL values, ascending, comma-separated (for percentiles in SQL)."""

    function = "GROUP_CONCAT"
    output_field = TextField()
    allow_distinct = False

    def as_mysql(self, compiler, connection, **extra):
        expression_sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"GROUP_CONCAT({expression_sql} ORDER BY {expression_sql} SEPARATOR ',')",
            [*params, *params],
        )


def percentile_from_sorted_concat(values_sql: str, count_sql: str, fraction: float) -> str:
    """MariaDB/MySQL SQL for PERCENTILE_CONT(fraction) given a SortedConcat column and its count.

    Linear interpolation between the values at 0-based ranks floor(f*(n-1)) and ceil(f*(n-1)), as
    PERCENTILE_CONT does. `fraction` is a number this module passes, never user input.
    """
    rank = f"({float(fraction)!r} * ({count_sql} - 1))"

    def nth(position: str) -> str:
        return f"CAST(SUBSTRING_INDEX(SUBSTRING_INDEX({values_sql}, ',', {position}), ',', -1) AS DECIMAL(20, 6))"

    low, high = nth(f"FLOOR({rank}) + 1"), nth(f"CEILING({rank}) + 1")
    return f"CASE WHEN {count_sql} > 0 THEN {low} + ({rank} - FLOOR({rank})) * ({high} - {low}) END"
