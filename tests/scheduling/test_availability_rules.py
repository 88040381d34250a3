import datetime as dt

import pytest
from django.utils import timezone

from opd.core.errors import Conflict, ValidationFailed
from scheduling.models import AvailabilityRule, ExceptionKind
from scheduling.services import availability_exception_create, availability_rule_create
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


def rule(actor, doctor, department, **overrides):
    fields = {
        "weekday": 0,
        "start_time": dt.time(9),
        "end_time": dt.time(12),
        "slot_minutes": 15,
        "capacity": 1,
    }
    fields.update(overrides)
    return availability_rule_create(actor=actor, doctor=doctor, department=department, **fields)


def test_it_refuses_overlapping_sessions(staff_user, doctor, department):
    rule(staff_user, doctor, department)
    with pytest.raises(Conflict) as err:
        rule(staff_user, doctor, department, start_time=dt.time(11), end_time=dt.time(13))
    assert "start_time" in err.value.fields
    assert AvailabilityRule.objects.count() == 1


def test_it_allows_back_to_back_sessions_and_other_days(staff_user, doctor, department):
    rule(staff_user, doctor, department)
    rule(staff_user, doctor, department, start_time=dt.time(12), end_time=dt.time(13))
    rule(staff_user, doctor, department, weekday=1)
    assert AvailabilityRule.objects.count() == 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"start_time": dt.time(12), "end_time": dt.time(9)}, "end_time"),
        ({"slot_minutes": 2}, "slot_minutes"),
        ({"capacity": 0}, "capacity"),
        ({"weekday": 9}, "weekday"),
        ({"start_time": dt.time(9), "end_time": dt.time(9, 10), "slot_minutes": 15}, "slot_minutes"),
    ],
)
def test_it_names_the_bad_field_and_writes_nothing(staff_user, doctor, department, overrides, field):
    with pytest.raises(ValidationFailed) as err:
        rule(staff_user, doctor, department, **overrides)
    assert field in err.value.fields
    assert not AvailabilityRule.objects.exists()


def test_it_refuses_a_department_the_doctor_does_not_work_in(staff_user, doctor, clinic):
    elsewhere = DepartmentFactory(clinic=clinic)
    with pytest.raises(ValidationFailed) as err:
        rule(staff_user, doctor, elsewhere)
    assert "department" in err.value.fields


def test_an_extra_session_needs_a_place_and_times(staff_user, doctor):
    with pytest.raises(ValidationFailed):
        availability_exception_create(
            actor=staff_user, doctor=doctor, kind=ExceptionKind.EXTRA, date=timezone.localdate()
        )


def test_an_update_cannot_move_a_rule_to_another_doctor(staff_user, doctor, colleague, department):
    from scheduling.services import availability_rule_update

    existing = rule(staff_user, doctor, department)
    with pytest.raises(ValidationFailed) as err:
        availability_rule_update(actor=staff_user, rule=existing, doctor=colleague)
    assert "doctor" in err.value.fields
    existing.refresh_from_db()
    assert existing.doctor_id == doctor.pk
