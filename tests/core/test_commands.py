"""The generate_slots management command."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from opd.core.models import AuditEvent
from scheduling.models import Slot
from scheduling.services import availability_rule_create
from tests.factories import DoctorFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def created(output: str) -> int:
    return int(re.search(r"created (\d+)", output).group(1))


@pytest.fixture
def scheduled_doctor(staff_user, doctor, department):
    """A doctor with a weekday session; the service plans the default horizon (28 days) at once."""
    for weekday in range(5):
        availability_rule_create(
            actor=staff_user,
            doctor=doctor,
            department=department,
            weekday=weekday,
            start_time=dt.time(9),
            end_time=dt.time(11),
        )
    return doctor


# generate_slots


def test_it_generates_slots_once(scheduled_doctor):
    before = Slot.objects.count()

    first = run("generate_slots", "--days", "60")
    second = run("generate_slots", "--days", "60")

    assert created(first) > 0
    assert Slot.objects.count() == before + created(first)
    assert created(second) == 0
    assert "created 0, reactivated 0, deactivated 0, resized 0" in second


def test_it_plans_only_the_doctors_named(scheduled_doctor, staff_user, org, department):
    other = DoctorFactory(user__organization=org, departments=[department])
    availability_rule_create(
        actor=staff_user,
        doctor=other,
        department=department,
        weekday=0,
        start_time=dt.time(14),
        end_time=dt.time(15),
    )
    others_before = Slot.objects.filter(doctor=other).count()

    output = run("generate_slots", "--days", "60", "--doctor", str(scheduled_doctor.pk))

    assert "Planned 1 doctor(s)" in output
    assert created(output) > 0
    assert Slot.objects.filter(doctor=other).count() == others_before


def test_it_plans_from_the_date_given(scheduled_doctor):
    start = timezone.now().date() + dt.timedelta(days=100)

    run("generate_slots", "--from", start.isoformat(), "--days", "7")

    far = Slot.objects.filter(doctor=scheduled_doctor, date__gte=start)
    assert far.exists()
    assert not far.filter(date__gt=start + dt.timedelta(days=8)).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "-1"], "between 0 and 366"),
        (["--days", "367"], "between 0 and 366"),
        (["--days", "many"], "invalid int value"),
        (["--from", "2030-02-30"], "YYYY-MM-DD"),
        (["--from", "tomorrow"], "YYYY-MM-DD"),
        (["--doctor", "999999"], "No doctor with id 999999"),
    ],
    ids=["negative-days", "too-many-days", "days-not-a-number", "no-such-date", "not-a-date", "no-doctor"],
)
def test_it_refuses_bad_arguments_and_writes_nothing(scheduled_doctor, args, message):
    slots, audits = Slot.objects.count(), AuditEvent.objects.count()

    # --days 60 alone would create slots, so an unchanged count shows the refusal came first.
    with pytest.raises(CommandError, match=message):
        run("generate_slots", "--days", "60", *args)

    assert (Slot.objects.count(), AuditEvent.objects.count()) == (slots, audits)


def test_it_names_every_unknown_doctor(scheduled_doctor):
    with pytest.raises(CommandError, match="No doctor with id 999998, 999999"):
        run("generate_slots", "--doctor", str(scheduled_doctor.pk), "999999", "--doctor", "999998")
