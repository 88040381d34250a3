"""Every statistic on the fixed data of conftest.py, against numbers worked out by hand there."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics import selectors
from analytics.expressions import SecondsBetween, offset_periods
from analytics.selectors import daily
from analytics.summaries import daily_summaries_refresh_due
from opd.core.errors import NotFound, PermissionDenied

from .conftest import EARLIER, MON, TUE

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["from appointments", "from stored figures"])
def world(request, world):
    """Every figure twice: computed from the appointments, and read from the stored daily figures of
    these (closed) days after beat's refresh has run."""
    if request.param == "from stored figures":
        if "clinical" in request.fixturenames:
            request.getfixturevalue("clinical")  # the consultations and notes are stored too
        assert daily_summaries_refresh_due() > 0
        everything = daily.StatsScope(
            clinics=(
                (world.clinic.pk, world.clinic.time_zone),
                (world.other_clinic.pk, world.other_clinic.time_zone),
            ),
            organization_ids=(world.org.pk,),
        )
        assert daily.stored_days(everything, EARLIER, TUE) == set(selectors.days_between(EARLIER, TUE))
    return world


def by_date(rows):
    return {row["date"]: row for row in rows}


def test_it_counts_appointments_by_status_per_local_day(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    days = by_date(selectors.daily_statistics(scope, MON, TUE))

    mon, tue = days[MON.isoformat()], days[TUE.isoformat()]
    assert (mon["appointments"], mon["completed"], mon["no_show"], mon["cancelled"]) == (5, 3, 1, 1)
    assert (mon["booked"], mon["checked_in"], mon["in_consultation"]) == (0, 0, 0)
    assert (tue["appointments"], tue["completed"], tue["booked"], tue["checked_in"]) == (3, 1, 1, 1)
    assert (tue["no_show"], tue["cancelled"]) == (0, 0)


def test_it_computes_rates(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    mon, tue = selectors.daily_statistics(scope, MON, TUE)

    assert mon["no_show_rate"] == 0.25  # 1 no-show of 4 not cancelled
    assert mon["cancellation_rate"] == 0.2  # 1 of 5
    assert tue["no_show_rate"] == 0.0
    assert tue["cancellation_rate"] == 0.0


def test_it_computes_waiting_and_consultation_times(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    mon, tue = selectors.daily_statistics(scope, MON, TUE)

    assert mon["wait_count"] == 3
    assert mon["wait_avg_minutes"] == 20.0  # 10, 20, 30
    assert mon["wait_p90_minutes"] == 28.0  # PERCENTILE_CONT(0.9): 20 + 0.8 * (30 - 20)
    assert mon["consultation_avg_minutes"] == 12.0  # 12, 10, 14
    # The checked-in patient has no start yet: not a wait.
    assert (tue["wait_count"], tue["wait_avg_minutes"], tue["wait_p90_minutes"]) == (1, 5.0, 5.0)
    assert tue["consultation_avg_minutes"] == 8.0


def test_it_tells_new_from_returning_patients(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    mon, tue = selectors.daily_statistics(scope, MON, TUE)

    # Monday: P1 had come before (1 December), P2 and P5 come for the first time.
    assert (mon["new_patients"], mon["returning_patients"]) == (2, 1)
    # Tuesday: P2 again.
    assert (tue["new_patients"], tue["returning_patients"]) == (0, 1)


@pytest.mark.parametrize("threshold", [10**6, 0], ids=["patients-seen-first", "every-patient-first"])
def test_it_finds_first_visits_the_same_way_both_ways(world, admin_user, monkeypatch, threshold):
    monkeypatch.setattr(daily, "FIRST_VISIT_SHORT_CLINIC_DAYS", threshold)
    scope = selectors.resolve_scope(admin_user)

    days = by_date(selectors.daily_statistics(scope, dt.date(2025, 11, 1), TUE))

    assert days[EARLIER.isoformat()]["new_patients"] == 1  # P1's first visit
    assert days[MON.isoformat()]["new_patients"] == 3
    assert days[TUE.isoformat()]["returning_patients"] == 1
    assert sum(day["new_patients"] for day in days.values()) == 4


def test_it_computes_utilization_from_slots(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    mon, tue = selectors.daily_statistics(scope, MON, TUE)

    assert (mon["capacity"], mon["seats_booked"], mon["utilization"]) == (4, 4, 1.0)
    assert (tue["capacity"], tue["seats_booked"], tue["utilization"]) == (4, 3, 0.75)


def test_it_counts_each_clinic_on_its_own_local_day(world, admin_user):
    # The north appointment is at 00:30 in Paris on Monday: 23:30 UTC on Sunday.
    scope = selectors.resolve_scope(admin_user)
    sun, mon, _tue = selectors.daily_statistics(scope, MON - dt.timedelta(days=1), TUE)

    assert sun["appointments"] == 0
    assert (mon["appointments"], mon["completed"]) == (6, 4)
    assert mon["no_show_rate"] == 0.2  # 1 of 5
    assert mon["cancellation_rate"] == 0.1667  # 1 of 6
    assert mon["wait_avg_minutes"] == 18.75  # 10, 20, 30, 15
    assert mon["wait_p90_minutes"] == 27.0  # sorted 10, 15, 20, 30: 20 + 0.7 * 10
    assert mon["consultation_avg_minutes"] == 14.0  # 12, 10, 14, 20
    assert (mon["new_patients"], mon["returning_patients"]) == (3, 1)
    assert (mon["capacity"], mon["seats_booked"]) == (5, 5)


def test_it_never_counts_another_organization(world, admin_user):
    scope = selectors.resolve_scope(admin_user)
    mon = by_date(selectors.daily_statistics(scope, MON, MON))[MON.isoformat()]

    assert mon["appointments"] == 6  # the other organization's appointment that day is not one of them
    assert world.other_org_clinic.pk not in scope.clinic_ids


def test_it_narrows_to_a_department_or_a_doctor(world, admin_user):
    by_department = selectors.resolve_scope(admin_user, department_id=world.north_department.pk)
    by_doctor = selectors.resolve_scope(admin_user, doctor_id=world.north_doctor.pk)

    assert by_department.clinic_ids == [world.other_clinic.pk]
    for scope in (by_department, by_doctor):
        (mon,) = selectors.daily_statistics(scope, MON, MON)
        assert (mon["appointments"], mon["wait_avg_minutes"], mon["consultation_avg_minutes"]) == (
            1,
            15.0,
            20.0,
        )


def test_it_summarizes_a_range(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    summary = selectors.summarize(selectors.daily_statistics(scope, MON, TUE))

    assert (summary["appointments"], summary["completed"]) == (8, 4)
    assert summary["no_show_rate"] == 0.1429  # 1 of 7 not cancelled
    assert summary["cancellation_rate"] == 0.125
    assert summary["wait_avg_minutes"] == 16.25  # 10, 20, 30, 5
    assert summary["wait_p90_minutes"] is None  # not derivable from daily figures
    assert summary["consultation_avg_minutes"] == 11.0
    assert summary["utilization"] == 0.875  # 7 of 8 seats
    assert (summary["new_patients"], summary["returning_patients"]) == (2, 2)


def test_it_fills_days_without_data_with_zeros(world, admin_user):
    scope = selectors.resolve_scope(admin_user)
    (day,) = selectors.daily_statistics(scope, dt.date(2026, 2, 1), dt.date(2026, 2, 1))

    assert day["appointments"] == 0
    assert day["utilization"] is None
    assert day["wait_p90_minutes"] is None


def test_the_portable_percentile_query_agrees(world, admin_user):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    rows = daily._appointments_by_day(scope, MON, TUE).filter(
        checked_in_at__isnull=False, started_at__isnull=False
    )

    p90 = daily._p90_ranked(rows, SecondsBetween(*daily.WAIT))

    assert p90 == {MON: 28 * 60.0, TUE: 5 * 60.0}


def test_it_counts_news2_bands_per_day_of_the_vitals(world, clinical, admin_user):
    central = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    everywhere = selectors.resolve_scope(admin_user)

    mon, tue = selectors.news2_daily(central, MON, TUE)
    assert (mon["total"], mon["low"], mon["low_medium"], mon["medium"], mon["high"]) == (3, 1, 0, 1, 1)
    assert (tue["total"], tue["low"]) == (1, 1)
    sun, mon, _ = selectors.news2_daily(everywhere, MON - dt.timedelta(days=1), TUE)
    assert sun["total"] == 0  # north's vitals at 00:36 Paris time are Monday's
    assert (mon["total"], mon["low_medium"]) == (4, 1)
    (north_doctor_mon,) = selectors.news2_daily(
        selectors.resolve_scope(admin_user, doctor_id=world.north_doctor.pk), MON, MON
    )
    assert (north_doctor_mon["total"], north_doctor_mon["low_medium"]) == (1, 1)


def test_it_counts_care_notes_per_category_per_day(world, clinical, admin_user):
    central = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    everywhere = selectors.resolve_scope(admin_user)

    mon, tue = selectors.care_notes_daily(central, MON, TUE)
    assert (mon["total"], mon["observation"], mon["medication"]) == (3, 2, 1)
    assert (tue["total"], tue["hygiene"]) == (1, 1)
    sun, mon, _ = selectors.care_notes_daily(everywhere, MON - dt.timedelta(days=1), TUE)
    assert sun["total"] == 0
    assert (mon["total"], mon["incident"]) == (4, 1)  # not the other organization's note
    (by_doctor,) = selectors.care_notes_daily(
        selectors.resolve_scope(admin_user, doctor_id=world.doctor.pk), MON, MON
    )
    assert (by_doctor["total"], by_doctor["observation"]) == (1, 1)  # the note the doctor wrote


def test_it_refuses_patients(world, patient):
    with pytest.raises(PermissionDenied):
        selectors.resolve_scope(patient.user)


def test_staff_see_only_their_clinics(world, staff_user):
    assert selectors.resolve_scope(staff_user).clinic_ids == [world.clinic.pk]
    with pytest.raises(NotFound) as refused:
        selectors.resolve_scope(staff_user, clinic_ids=[world.other_clinic.pk])
    assert "clinic" in refused.value.fields


def test_doctors_see_their_own_figures_only(world):
    scope = selectors.resolve_scope(world.doctor.user)
    assert scope.doctor_id == world.doctor.pk
    with pytest.raises(NotFound) as refused:
        selectors.resolve_scope(world.doctor.user, doctor_id=world.north_doctor.pk)
    assert "doctor" in refused.value.fields


def test_utc_offsets_follow_daylight_saving_time():
    import zoneinfo

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)

    london = offset_periods(zoneinfo.ZoneInfo("Europe/London"), start, end)
    kolkata = offset_periods(zoneinfo.ZoneInfo("Asia/Kolkata"), start, end)

    assert london == [
        (start, 0),
        (dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC), 60),
        (dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC), 0),
    ]
    assert kolkata == [(start, 330)]
