import datetime as dt

import pytest
from django.utils import timezone

from opd.core.errors import Conflict, PermissionDenied
from scheduling.models import AppointmentStatus
from scheduling.services import (
    appointment_book,
    appointment_check_in,
    appointment_complete,
    appointment_mark_no_show,
    appointment_set_priority,
    appointment_start,
)
from tests.consultations.factories import complete_visit
from tests.factories import PatientFactory, SlotFactory

pytestmark = pytest.mark.django_db


def booked(staff_user, org, doctor, department, minutes_from_now=30):
    slot = SlotFactory(
        doctor=doctor,
        department=department,
        start=timezone.now().replace(microsecond=0) + dt.timedelta(minutes=minutes_from_now),
    )
    return appointment_book(actor=staff_user, patient=PatientFactory(organization=org), slot=slot)


def test_check_in_issues_consecutive_tokens_per_department_and_day(staff_user, org, doctor, department):
    first = appointment_check_in(
        actor=staff_user, appointment=booked(staff_user, org, doctor, department, 20)
    )
    second = appointment_check_in(
        actor=staff_user, appointment=booked(staff_user, org, doctor, department, 40)
    )
    assert (first.token_number, second.token_number) == (1, 2)
    assert first.status == AppointmentStatus.CHECKED_IN
    assert first.checked_in_at is not None
    assert first.token_date == timezone.localtime(timezone.now(), department.clinic.tz).date()


def test_check_in_is_refused_before_the_window_opens(staff_user, org, doctor, department):
    appt = booked(staff_user, org, doctor, department, minutes_from_now=3 * 60)
    with pytest.raises(Conflict) as err:
        appointment_check_in(actor=staff_user, appointment=appt)
    assert err.value.code == "checkin_not_open"
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.BOOKED
    assert appt.token_number is None


def test_check_in_is_refused_after_the_appointment_ended(staff_user, org, doctor, department):
    appt = booked(staff_user, org, doctor, department, 20)
    with pytest.raises(Conflict) as err:
        appointment_check_in(actor=staff_user, appointment=appt, now=appt.end + dt.timedelta(minutes=1))
    assert err.value.code == "checkin_closed"


def test_a_visit_runs_from_check_in_to_completed(staff_user, org, doctor, department):
    appt = appointment_check_in(actor=staff_user, appointment=booked(staff_user, org, doctor, department))
    appt = appointment_start(actor=doctor.user, appointment=appt)
    assert appt.status == AppointmentStatus.IN_CONSULTATION
    assert appt.started_at is not None
    appt = complete_visit(actor=doctor.user, appointment=appt)
    assert appt.status == AppointmentStatus.COMPLETED
    assert appt.completed_at is not None


def test_another_doctor_cannot_start_my_patient(staff_user, org, doctor, colleague, department):
    appt = appointment_check_in(actor=staff_user, appointment=booked(staff_user, org, doctor, department))
    with pytest.raises(PermissionDenied):
        appointment_start(actor=colleague.user, appointment=appt)


def test_it_refuses_to_complete_a_visit_that_has_not_started(staff_user, org, doctor, department):
    appt = appointment_check_in(actor=staff_user, appointment=booked(staff_user, org, doctor, department))
    with pytest.raises(Conflict):
        appointment_complete(actor=doctor.user, appointment=appt)


def test_no_show_and_priority(staff_user, org, doctor, department):
    appt = booked(staff_user, org, doctor, department)
    appt = appointment_set_priority(actor=staff_user, appointment=appt, is_priority=True, reason="Chest pain")
    assert appt.is_priority
    assert appt.priority_reason == "Chest pain"
    appt = appointment_mark_no_show(actor=staff_user, appointment=appt)
    assert appt.status == AppointmentStatus.NO_SHOW
    with pytest.raises(Conflict):
        appointment_check_in(actor=staff_user, appointment=appt)
