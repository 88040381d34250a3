import datetime as dt

import pytest
from django.utils import timezone

from opd.core.errors import Conflict, NotFound, ValidationFailed
from opd.core.models import AuditEvent
from patients.models import PatientStatus
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import (
    appointment_book,
    appointment_book_first_available,
    appointment_cancel,
    appointment_reschedule,
)
from tests.factories import PatientFactory, SlotFactory

pytestmark = pytest.mark.django_db


def test_it_books_a_seat_and_counts_it(staff_user, patient, slot):
    appt = appointment_book(actor=staff_user, patient=patient, slot=slot, reason="Cough")
    slot.refresh_from_db()
    assert appt.status == AppointmentStatus.BOOKED
    assert (appt.start, appt.end, appt.doctor_id, appt.clinic_id) == (
        slot.start,
        slot.end,
        slot.doctor_id,
        slot.clinic_id,
    )
    assert appt.seat == 1
    assert slot.booked_count == 1
    assert AuditEvent.objects.filter(action="appointment.booked", object_id=str(appt.pk)).exists()


def test_it_refuses_a_full_slot(staff_user, patient, other_patient, doctor, department):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=patient, slot=slot)
    with pytest.raises(Conflict) as err:
        appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    assert err.value.code == "slot_full"
    slot.refresh_from_db()
    assert slot.booked_count == 1
    assert Appointment.objects.filter(slot=slot).count() == 1


def test_it_refuses_an_inactive_patient(staff_user, org, slot):
    inactive = PatientFactory(organization=org, status=PatientStatus.INACTIVE)
    with pytest.raises(ValidationFailed) as err:
        appointment_book(actor=staff_user, patient=inactive, slot=slot)
    assert "patient" in err.value.fields
    assert not Appointment.objects.exists()


def test_it_refuses_a_past_slot(staff_user, patient, doctor, department):
    past = SlotFactory(doctor=doctor, department=department, start=timezone.now() - dt.timedelta(hours=1))
    with pytest.raises(ValidationFailed) as err:
        appointment_book(actor=staff_user, patient=patient, slot=past)
    assert "slot" in err.value.fields


def test_it_refuses_an_overlapping_appointment_of_the_same_patient(
    staff_user, patient, org, department, slot
):
    other_doctor_slot = SlotFactory(department=department, start=slot.start + dt.timedelta(minutes=5))
    appointment_book(actor=staff_user, patient=patient, slot=slot)
    with pytest.raises(Conflict) as err:
        appointment_book(actor=staff_user, patient=patient, slot=other_doctor_slot)
    assert err.value.code == "overlap"


def test_it_refuses_a_patient_of_another_organization(staff_user, other_org_patient, slot):
    with pytest.raises(NotFound):
        appointment_book(actor=staff_user, patient=other_org_patient, slot=slot)
    assert not Appointment.objects.exists()


def test_cancel_frees_the_seat_for_someone_else(staff_user, patient, other_patient, doctor, department):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    appt = appointment_book(actor=staff_user, patient=patient, slot=slot)
    appointment_cancel(actor=staff_user, appointment=appt, reason="Feeling better")
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.CANCELLED
    assert appt.seat is None
    assert appt.cancelled_at
    again = appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    slot.refresh_from_db()
    assert again.seat == 1
    assert slot.booked_count == 1


def test_reschedule_moves_the_seat_in_one_step(staff_user, patient, doctor, department, slot):
    later = SlotFactory(doctor=doctor, department=department, start=slot.start + dt.timedelta(hours=2))
    appt = appointment_book(actor=staff_user, patient=patient, slot=slot)
    appointment_reschedule(actor=staff_user, appointment=appt, slot=later)
    appt.refresh_from_db()
    slot.refresh_from_db()
    later.refresh_from_db()
    assert appt.slot_id == later.pk
    assert appt.start == later.start
    assert appt.reschedule_count == 1
    assert (slot.booked_count, later.booked_count) == (0, 1)


def test_reschedule_into_a_full_slot_leaves_the_booking_untouched(
    staff_user, patient, other_patient, doctor, department, slot
):
    full = SlotFactory(
        doctor=doctor, department=department, capacity=1, start=slot.start + dt.timedelta(hours=3)
    )
    appointment_book(actor=staff_user, patient=other_patient, slot=full)
    appt = appointment_book(actor=staff_user, patient=patient, slot=slot)
    with pytest.raises(Conflict):
        appointment_reschedule(actor=staff_user, appointment=appt, slot=full)
    appt.refresh_from_db()
    slot.refresh_from_db()
    assert appt.slot_id == slot.pk
    assert slot.booked_count == 1


def test_first_available_never_crosses_into_another_organization(
    staff_user, patient, other_org_doctor, other_org_department
):
    SlotFactory(doctor=other_org_doctor, department=other_org_department)
    with pytest.raises(Conflict) as err:
        appointment_book_first_available(
            actor=staff_user, patient=patient, department_id=other_org_department.pk
        )
    assert err.value.code == "no_slot"
    assert not Appointment.objects.exists()


def test_it_refuses_slots_of_a_closed_department(staff_user, patient, slot, department):
    department.is_active = False
    department.save()
    with pytest.raises(ValidationFailed) as err:
        appointment_book(actor=staff_user, patient=patient, slot=slot)
    assert "slot" in err.value.fields
    with pytest.raises(Conflict):
        appointment_book_first_available(actor=staff_user, patient=patient, department_id=department.pk)
    assert not Appointment.objects.exists()
