"""Stored daily figures of closed days: when they are written, when they are stale, and that a day read
from them is the day computed from its appointments (the hand-computed figures themselves are checked
both ways in test_statistics.py)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import caching, selectors, summaries
from analytics.models import DailyStat, DailyWait, StatLevel, SummaryDay
from analytics.selectors import daily
from analytics.tasks import refresh_summaries
from opd.core.errors import NotFound
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_mark_no_show, appointment_start
from tests.consultations.factories import complete_visit

from .conftest import EARLIER, MON, TUE, at, completed, make_slot

pytestmark = pytest.mark.django_db
WED = TUE + dt.timedelta(days=1)


def figures(scope, date_from=EARLIER, date_to=WED) -> dict[str, dict]:
    caching.clear_all()
    return {row["date"]: row for row in selectors.daily_statistics(scope, date_from, date_to)}


def stored(scope, date_from=EARLIER, date_to=WED) -> set[dt.date]:
    return daily.stored_days(scope, date_from, date_to)


def test_stored_days_read_like_the_appointments_for_every_scope(
    world, admin_user, other_org_doctor, other_org_department, django_assert_num_queries
):
    # The other organization opened on 1 December too (an empty slot), so its days are stored from then.
    make_slot(other_org_doctor, other_org_department, EARLIER, "11:00", 1)
    scopes = [
        selectors.resolve_scope(admin_user),
        selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk]),
        selectors.resolve_scope(admin_user, department_id=world.department.pk),
        selectors.resolve_scope(admin_user, doctor_id=world.north_doctor.pk),
        # Two organizations (a superuser's view): clinic rows summed, the p90 picked from the waits.
        daily.StatsScope(
            clinics=tuple(
                sorted(
                    (c.pk, c.time_zone) for c in (world.clinic, world.other_clinic, world.other_org_clinic)
                )
            ),
            organization_ids=tuple(sorted({world.org.pk, world.other_org_clinic.organization_id})),
        ),
    ]
    live = [figures(scope) for scope in scopes]

    summaries.daily_summaries_refresh_due()

    for scope, expected in zip(scopes, live, strict=True):
        assert stored(scope) == set(selectors.days_between(EARLIER, WED))
        caching.clear_all()
        # Which days are stored, (which rows answer the scope, or) the p90 from the waits, the sums: no
        # appointment read.
        with CaptureQueriesContext(connection) as queries, django_assert_num_queries(3):
            rows = selectors.daily_statistics(scope, EARLIER, WED)
        assert not [q for q in queries if "scheduling_appointment" in q["sql"]]
        assert {row["date"]: row for row in rows} == expected


def test_it_stores_each_day_per_doctor_clinic_and_organization_and_every_wait(world):
    summaries.daily_summaries_refresh(clinic_id=world.clinic.pk, date_from=MON, date_to=TUE)
    summaries.daily_summaries_refresh(clinic_id=world.other_clinic.pk, date_from=MON, date_to=TUE)

    rows = DailyStat.objects.filter(clinic=world.clinic, level=StatLevel.DOCTOR).order_by("date")
    assert [(r.date, r.doctor_id, r.appointments, r.completed, r.new_patients, r.capacity) for r in rows] == [
        (MON, world.doctor.pk, 5, 3, 2, 4),
        (TUE, world.doctor.pk, 3, 1, 0, 4),
    ]
    clinic = DailyStat.objects.filter(clinic=world.clinic, level=StatLevel.CLINIC).order_by("date")
    # Monday's waits 10, 20, 30 minutes: rank 0.9 * 2 = 1.8, so 20 + 0.8 * 10 = 28 minutes.
    assert [(r.date, r.appointments, r.wait_p90_seconds) for r in clinic] == [
        (MON, 5, 28 * 60.0),
        (TUE, 3, 5 * 60.0),
    ]
    organization = DailyStat.objects.filter(organization=world.org, level=StatLevel.ORGANIZATION).order_by(
        "date"
    )
    # With north's 15 minutes on Monday: 10, 15, 20, 30 -> rank 2.7: 20 + 0.7 * 10 = 27 minutes.
    assert [(r.date, r.appointments, r.completed, r.wait_p90_seconds) for r in organization] == [
        (MON, 6, 4, 27 * 60.0),
        (TUE, 3, 1, 5 * 60.0),
    ]
    waits = DailyWait.objects.filter(clinic=world.clinic).order_by("date", "seconds")
    assert [(w.date, w.seconds // 60) for w in waits] == [(MON, 10), (MON, 20), (MON, 30), (TUE, 5)]
    assert set(SummaryDay.objects.filter(clinic=world.clinic).values_list("date", flat=True)) == {MON, TUE}


def test_it_never_stores_a_day_that_is_not_over_everywhere(world):
    today = timezone.now().date()
    first_open = caching.closed_before()

    days = summaries.daily_summaries_refresh(
        clinic_id=world.clinic.pk, date_from=first_open - dt.timedelta(days=2), date_to=today
    )

    assert days == 2
    assert SummaryDay.objects.filter(date__gte=first_open).count() == 0


def test_a_change_to_a_closed_day_is_read_from_the_appointments_until_stored_again(
    world, admin_user, staff_user, django_capture_on_commit_callbacks
):
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    summaries.daily_summaries_refresh_due()
    assert figures(scope)[TUE.isoformat()]["no_show"] == 0

    # Tuesday's booked patient never came; the sweep marks it days later.
    with django_capture_on_commit_callbacks(execute=True):
        appointment_mark_no_show(actor=staff_user, appointment=world.appointments[7])

    assert TUE not in stored(scope)
    assert MON in stored(scope)
    assert figures(scope)[TUE.isoformat()]["no_show"] == 1

    assert summaries.daily_summaries_refresh_due() == 1  # Tuesday at this clinic, and nothing else
    assert TUE in stored(scope)
    assert figures(scope)[TUE.isoformat()]["no_show"] == 1


def test_a_late_completion_also_marks_the_day_of_the_patients_next_visit(
    world, admin_user, doctor, department, django_capture_on_commit_callbacks
):
    # P7 checked in on Tuesday and comes back, completed, on Wednesday: Wednesday's visit is their first.
    patient = world.patients[7]
    wed_slot = make_slot(doctor, department, WED, "10:00", 1)
    completed(wed_slot, patient, 1, "09:55", "10:00", "10:10")
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    summaries.daily_summaries_refresh_due()
    assert figures(scope)[WED.isoformat()]["new_patients"] == 1

    # Tuesday's consultation is recorded late: it becomes P7's first visit, Wednesday's becomes a return.
    tuesday = world.appointments[8]
    zone = tuesday.clinic.time_zone
    with django_capture_on_commit_callbacks(execute=True):
        started = appointment_start(actor=doctor.user, appointment=tuesday, now=at(TUE, "10:10", zone))
    with django_capture_on_commit_callbacks(execute=True):
        complete_visit(actor=doctor.user, appointment=started, now=at(TUE, "10:20", zone))

    assert stored(scope).isdisjoint({TUE, WED})
    days = figures(scope)
    assert (days[TUE.isoformat()]["new_patients"], days[WED.isoformat()]["new_patients"]) == (1, 0)
    assert (days[WED.isoformat()]["returning_patients"]) == 1


def test_beat_refreshes_the_stored_figures(world, settings):
    assert (
        settings.CELERY_BEAT_SCHEDULE["analytics.refresh_summaries"]["task"] == "analytics.refresh_summaries"
    )

    first = refresh_summaries.delay().get()
    again = refresh_summaries.delay().get()

    # From the organization's first day with slots (1 December) to the last closed day, at both clinics
    # (and the other organization's clinic from its own first day); then nothing is due.
    last = summaries.last_closed_day()
    riverside_days = (last - EARLIER).days + 1
    foreign_days = (last - MON).days + 1
    assert first == 2 * riverside_days + foreign_days
    assert again == 0


def test_the_command_refreshes_due_days_or_a_range(world, capsys):
    call_command("refresh_summaries", "--clinic", str(world.clinic.pk))
    assert "clinic-days" in capsys.readouterr().out
    assert SummaryDay.objects.filter(clinic=world.other_clinic).count() == 0

    DailyStat.objects.filter(clinic=world.clinic, date=MON).delete()
    call_command(
        "refresh_summaries",
        "--clinic",
        str(world.clinic.pk),
        "--date-from",
        "2026-01-12",
        "--date-to",
        "2026-01-12",
    )
    assert DailyStat.objects.get(clinic=world.clinic, date=MON, level=StatLevel.CLINIC).appointments == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clinic", "999999"], "--clinic: unknown clinic 999999"),
        (["--date-from", "2026-01-12"], "--date-from and --date-to go together"),
        (["--date-from", "2026-01-13", "--date-to", "2026-01-12"], "--date-from is after --date-to"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("refresh_summaries", *args)
    assert SummaryDay.objects.count() == 0


def test_refreshing_an_unknown_clinic_is_not_found():
    with pytest.raises(NotFound):
        summaries.daily_summaries_refresh(clinic_id=999999, date_from=MON, date_to=TUE)


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_while_a_refresh_reads_leaves_the_day_stale(
    world, admin_user, staff_user, monkeypatch
):
    """The refresh has stamped Tuesday and is reading when the no-show commits and its event marks the
    day: the marker waits for the refresh to commit, and the day ends stale, not current without it."""
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    reading, go_on = threading.Event(), threading.Event()
    real_store = summaries._store_waits

    def slow_store(*args, **kwargs):
        reading.set()
        assert go_on.wait(30)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(summaries, "_store_waits", slow_store)
    errors = []

    def refresh():
        try:
            summaries.daily_summaries_refresh(clinic_id=world.clinic.pk, date_from=MON, date_to=TUE)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=refresh)
    worker.start()
    assert reading.wait(30)
    # The change commits now (its figures were not read by the refresh's earlier queries)...
    Appointment.objects.filter(pk=world.appointments[7].pk).update(status=AppointmentStatus.NO_SHOW)
    marker = threading.Thread(
        target=lambda: (
            summaries.daily_summaries_mark_changed(
                appointment_id=world.appointments[7].pk, days=[(world.clinic.pk, TUE)]
            ),
            connections.close_all(),
        )
    )
    marker.start()
    marker.join(0.5)
    assert marker.is_alive()  # ...and its marker waits for the refresh's lock on the day
    go_on.set()
    worker.join(30)
    marker.join(30)

    assert not errors
    assert TUE not in stored(scope, MON, TUE)
    assert MON in stored(scope, MON, TUE)
    assert figures(scope, MON, TUE)[TUE.isoformat()]["no_show"] == 1


def test_a_care_note_recategorised_on_a_closed_day_is_read_afresh(
    world, admin_user, staff_user, django_capture_on_commit_callbacks
):
    from consultations.models import CareNote
    from consultations.services import care_note_update

    note = CareNote.objects.create(
        organization_id=world.org.pk,
        clinic=world.clinic,
        patient=world.patients[1],
        author=staff_user,
        category="observation",
        text="Pale, steady",
        date=MON,
        created_at=at(MON, "09:40", world.clinic.time_zone),
    )
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    summaries.daily_summaries_refresh_due()
    caching.clear_all()
    (before,) = selectors.care_notes_daily(scope, MON, MON)
    assert (before["observation"], before["incident"]) == (1, 0)

    with django_capture_on_commit_callbacks(execute=True):
        care_note_update(actor=staff_user, care_note=note, category="incident")

    assert MON not in stored(scope, MON, MON)
    (after,) = selectors.care_notes_daily(scope, MON, MON)
    assert (after["observation"], after["incident"], after["total"]) == (0, 1, 1)


def test_vitals_written_again_leave_the_day_of_the_earlier_vitals(
    world, admin_user, doctor, django_capture_on_commit_callbacks
):
    from consultations.models import Consultation
    from consultations.services import consultation_update

    appointment = world.appointments[8]  # Tuesday, checked in; the draft was left open
    Consultation.objects.create(
        organization_id=appointment.organization_id,
        clinic_id=appointment.clinic_id,
        appointment=appointment,
        doctor_id=appointment.doctor_id,
        patient_id=appointment.patient_id,
        status="draft",
        vitals_recorded_at=at(TUE, "10:06", world.clinic.time_zone),
        news2_total=0,
        news2_band="low",
    )
    scope = selectors.resolve_scope(admin_user, clinic_ids=[world.clinic.pk])
    summaries.daily_summaries_refresh_due()
    caching.clear_all()
    (before,) = selectors.news2_daily(scope, TUE, TUE)
    assert before["low"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        consultation_update(
            actor=doctor.user, consultation=Consultation.objects.get(appointment=appointment), pulse=72
        )

    assert TUE not in stored(scope, TUE, TUE)
    (after,) = selectors.news2_daily(scope, TUE, TUE)
    assert (after["low"], after["total"]) == (0, 0)  # the band now counts today
