"""Stored daily figures of closed days, so that statistics over years read thousands of rows, not millions.

A closed day (over in every zone, see caching.closed_before) rarely changes again. For each clinic and
closed day, daily_summaries_refresh stores the figures in DailyStat per (department, doctor), per clinic
and per organization (the last two with the day's wait p90) and every measured wait in DailyWait,
computed by the same SQL as the live statistics, and records in SummaryDay when it began reading. The daily statistics read a day from there while it is fresh for every
clinic in scope (analytics.selectors.daily), and compute it from the appointments otherwise.

Staleness: the appointment events (booking, cancellation, move, every queue change) mark a closed day
changed (daily_summaries_mark_changed); beat's analytics.refresh_summaries stores the closed days that
have no figures yet (each night's new day, a new clinic) or stale ones, every few minutes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, Q, Sum
from django.db.models.functions import Now

from opd.core.db import retry_on_deadlock
from opd.core.errors import NotFound
from opd.core.models import Clinic
from scheduling.models import Appointment, AppointmentStatus, Slot

from .caching import closed_before
from .models import DailyStat, DailyWait, StatLevel, SummaryDay, SummaryLock
from .selectors import clinical, daily
from .selectors.clinical import CARE_STORED, NEWS2_STORED
from .selectors.scope import StatsScope, day_runs, days_between

logger = logging.getLogger(__name__)

GROUPED_BY = ("department_id", "doctor_id")
# Every summed column of DailyStat: appointment figures, NEWS2 bands, care note categories.
STORED = [*daily.ADDITIVE, *NEWS2_STORED.values(), *CARE_STORED.values()]


def last_closed_day() -> dt.date:
    return closed_before() - dt.timedelta(days=1)


@retry_on_deadlock
def daily_summaries_refresh(*, clinic_id: int, date_from: dt.date, date_to: dt.date) -> int:
    """Store the figures of one clinic's closed days in [date_from, date_to] (later days are left out:
    they still change). Returns how many days were stored.

    Locks the organization's SummaryLock row, so two refreshes in an organization take turns. The SummaryDay rows are stamped with
    the database's clock *before* the figures are read, and stay locked until commit: a change that
    commits meanwhile marks its day after that stamp (its marker waits for the lock), so the day reads
    as stale, never as current with the change missing.
    """
    date_to = min(date_to, last_closed_day())
    if date_from > date_to:
        return 0
    with transaction.atomic():
        clinic = Clinic.objects.filter(pk=clinic_id).first()
        if clinic is None:
            raise NotFound("Unknown clinic.", fields={"clinic": "Unknown clinic."})
        # One organization's refreshes take turns: each rewrites the organization's totals of its days.
        SummaryLock.objects.bulk_create(
            [SummaryLock(organization_id=clinic.organization_id)], ignore_conflicts=True
        )
        SummaryLock.objects.select_for_update().get(organization_id=clinic.organization_id)
        in_range = {"clinic_id": clinic.pk, "date__gte": date_from, "date__lte": date_to}
        days = days_between(date_from, date_to)
        have = set(SummaryDay.objects.filter(**in_range).values_list("date", flat=True))
        placeholder = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # replaced by the stamp just below
        SummaryDay.objects.bulk_create(
            [SummaryDay(clinic=clinic, date=d, computed_from=placeholder) for d in days if d not in have],
            batch_size=1000,
        )
        SummaryDay.objects.filter(**in_range).update(computed_from=Now())

        scope = StatsScope(
            clinics=((clinic.pk, clinic.time_zone),), organization_ids=(clinic.organization_id,)
        )
        groups: dict[tuple, dict] = {}
        for key, values in daily._appointment_aggregates(scope, date_from, date_to, GROUPED_BY).items():
            groups.setdefault(key, {}).update(values)
        for key, count in daily._new_patient_counts(scope, date_from, date_to, GROUPED_BY).items():
            groups.setdefault(key, {})["new_patients"] = count
        for key, values in daily._slot_aggregates(scope, date_from, date_to, GROUPED_BY).items():
            groups.setdefault(key, {}).update(values)
        news2 = clinical.news2_counts(scope, date_from, date_to, ("appointment__department_id", "doctor_id"))
        for key, counts in news2.items():
            groups.setdefault(key, {}).update({NEWS2_STORED[band]: n for band, n in counts.items()})
        totals: dict[dt.date, dict] = {}
        for (day, _department_id, _doctor_id), values in groups.items():
            total = totals.setdefault(day, dict.fromkeys(STORED, 0))
            for name, value in values.items():
                total[name] += value
        for day, counts in clinical.care_note_counts(scope, date_from, date_to).items():
            total = totals.setdefault(day, dict.fromkeys(STORED, 0))
            total.update({CARE_STORED[category]: n for category, n in counts.items()})

        DailyStat.objects.filter(**in_range).delete()
        DailyWait.objects.filter(**in_range).delete()
        _store_waits(scope, date_from, date_to)
        p90 = daily.stored_wait_p90(scope, {d: t["wait_count"] for d, t in totals.items() if t["wait_count"]})
        common = {"organization_id": clinic.organization_id, "clinic_id": clinic.pk}
        DailyStat.objects.bulk_create(
            [
                DailyStat(
                    level=StatLevel.DOCTOR, date=day, department_id=dep, doctor_id=doc, **common, **values
                )
                for (day, dep, doc), values in groups.items()
            ]
            + [
                DailyStat(level=StatLevel.CLINIC, date=day, wait_p90_seconds=p90.get(day), **common, **total)
                for day, total in totals.items()
            ],
            batch_size=1000,
        )
        _store_organization_totals(clinic.organization_id, date_from, date_to)
    return len(days)


def _store_organization_totals(organization_id: int, date_from: dt.date, date_to: dt.date) -> None:
    """The organization's rows for these days: its clinics' rows summed, and the p90 over all their
    waits. Caller holds the organization's lock."""
    in_range = {"organization_id": organization_id, "date__gte": date_from, "date__lte": date_to}
    DailyStat.objects.filter(level=StatLevel.ORGANIZATION, **in_range).delete()
    # Rows of the date and each stored count: the checker's row type knows only the date.
    sums: list[dict[str, Any]] = list(
        DailyStat.objects.filter(level=StatLevel.CLINIC, **in_range)  # type: ignore[arg-type]
        .values("date")
        .annotate(**{key: Sum(key) for key in STORED})
        .order_by()
    )
    clinics = Clinic.objects.filter(organization_id=organization_id).order_by("pk")
    scope = StatsScope(
        clinics=tuple(clinics.values_list("pk", "time_zone")), organization_ids=(organization_id,)
    )
    p90 = daily.stored_wait_p90(scope, {row["date"]: row["wait_count"] for row in sums if row["wait_count"]})
    DailyStat.objects.bulk_create(
        [
            DailyStat(
                level=StatLevel.ORGANIZATION,
                organization_id=organization_id,
                date=row["date"],
                wait_p90_seconds=p90.get(row["date"]),
                **{key: int(row[key] or 0) for key in STORED},
            )
            for row in sums
        ],
        batch_size=1000,
    )


def _store_waits(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> None:
    """INSERT ... SELECT: the waits go from the appointments to DailyWait without leaving the database
    (under READ COMMITTED the SELECT is a consistent read and locks no appointment)."""
    sql, params = daily.wait_rows(scope, date_from, date_to).query.sql_with_params()
    table = connection.ops.quote_name(DailyWait._meta.db_table)
    insert = (
        f"INSERT INTO {table} (date, organization_id, clinic_id, department_id, doctor_id, seconds) "  # noqa: S608 (Django's SQL, with parameters)
        f"SELECT w.day, w.organization_id, w.clinic_id, w.department_id, w.doctor_id, w.seconds "
        f"FROM ({sql}) w WHERE w.day >= %s AND w.day <= %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [*params, date_from.isoformat(), date_to.isoformat()])


def daily_summaries_refresh_due(*, clinic_ids: list[int] | None = None) -> int:
    """Store every closed day that has no current figures, for each clinic (all, or `clinic_ids`), from
    its organization's first day with slots. Returns how many clinic-days were stored."""
    last = last_closed_day()
    clinics = Clinic.objects.order_by("pk")
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=clinic_ids)
    firsts: dict[int, dt.date | None] = {}
    stored = 0
    for clinic in clinics:
        if clinic.organization_id not in firsts:
            firsts[clinic.organization_id] = _first_day(clinic.organization_id)
        first = firsts[clinic.organization_id]
        if first is None or first > last:
            continue
        fresh = set(
            SummaryDay.objects.filter(
                daily.fresh_summary_q(), clinic_id=clinic.pk, date__gte=first, date__lte=last
            ).values_list("date", flat=True)
        )
        due = [day for day in days_between(first, last) if day not in fresh]
        for run_from, run_to in day_runs(due):
            stored += daily_summaries_refresh(clinic_id=clinic.pk, date_from=run_from, date_to=run_to)
    if stored:
        logger.info("stored the daily figures of %s clinic-days", stored)
    return stored


def _first_day(organization_id: int) -> dt.date | None:
    """The organization's first day with slots, read per clinic from the (clinic, date, start) index."""
    firsts = [
        Slot.objects.filter(clinic_id=pk).aggregate(first=Min("date"))["first"]
        for pk in Clinic.objects.filter(organization_id=organization_id).values_list("pk", flat=True)
    ]
    firsts = [day for day in firsts if day is not None]
    return min(firsts) if firsts else None


def daily_summaries_mark_changed(*, appointment_id: int | None, days: list[tuple[int, dt.date]]) -> int:
    """Mark the stored figures of these (clinic, day)s changed, where the day is closed. Called after the
    change committed, by the appointment event handler (subscribers.on_appointment_event).

    A visit completed late can also change a later day: the patient's next completed visit is then no
    longer their first, so that day's count of new patients moves too."""
    first_open = closed_before()
    closed = [(clinic_id, day) for clinic_id, day in days if day < first_open]
    if not closed:
        return 0
    appointment = (
        Appointment.objects.filter(pk=appointment_id, status=AppointmentStatus.COMPLETED)
        .values("organization_id", "patient_id", "start")
        .first()
        if appointment_id is not None
        else None
    )
    if appointment is not None:
        later = (
            Appointment.objects.filter(
                organization_id=appointment["organization_id"],
                patient_id=appointment["patient_id"],
                status=AppointmentStatus.COMPLETED,
                start__gt=appointment["start"],
            )
            .order_by("start")
            .values_list("clinic_id", "slot__date")
            .first()
        )
        if later is not None and later[1] < first_open:
            closed.append(later)
    which = Q()
    for clinic_id, day in closed:
        which |= Q(clinic_id=clinic_id, date=day)
    return SummaryDay.objects.filter(which).update(changed_at=Now())
