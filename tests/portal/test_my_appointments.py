"""My appointments: upcoming and past, cancel and reschedule up to the clinic's cut-off."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Appointment, AppointmentStatus, Slot
from scheduling.services import appointment_book, appointment_cancel
from tests.factories import SlotFactory

from .conftest import make_slot

pytestmark = pytest.mark.django_db

APPOINTMENTS = "/portal/appointments/"


def token() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def booked(patient, open_slot):
    return appointment_book(actor=None, patient=patient, slot=open_slot, reason="Cough")


@pytest.fixture
def soon(patient, doctor, department):
    """Booked by reception for one hour from now: inside the default two-hour cut-off."""
    slot = SlotFactory(
        doctor=doctor,
        department=department,
        start=timezone.now().replace(microsecond=0) + dt.timedelta(hours=1),
    )
    return appointment_book(actor=None, patient=patient, slot=slot)


def test_it_lists_upcoming_and_past_appointments_with_their_status(
    as_patient, patient, doctor, department, booked
):
    gone = make_slot(doctor, department, days=4, hour=9)
    cancelled = appointment_cancel(
        actor=None, appointment=appointment_book(actor=None, patient=patient, slot=gone)
    )
    old = make_slot(doctor, department, days=5, hour=9)
    done = appointment_book(actor=None, patient=patient, slot=old)
    Appointment.objects.filter(pk=done.pk).update(
        status=AppointmentStatus.COMPLETED,
        start=timezone.now() - dt.timedelta(days=3),
        end=timezone.now() - dt.timedelta(days=3) + dt.timedelta(minutes=15),
    )

    response = as_patient.get(APPOINTMENTS)

    assert [a.pk for a in response.context["upcoming"]] == [booked.pk]
    assert [a.pk for a in response.context["past_page"]] == [cancelled.pk, done.pk]
    html = response.content.decode()
    assert '<span class="badge badge-booked">Booked</span>' in html
    assert '<span class="badge badge-cancelled">Cancelled</span>' in html
    assert '<span class="badge badge-completed">Completed</span>' in html


def test_it_lists_only_my_own_appointments(as_patient, other_patient, booked, later_slot):
    theirs = appointment_book(actor=None, patient=other_patient, slot=later_slot)

    response = as_patient.get(APPOINTMENTS)

    assert [a.pk for a in response.context["upcoming"]] == [booked.pk]
    assert theirs.pk not in [a.pk for a in response.context["past_page"]]


def test_it_shows_an_empty_state_with_a_way_to_book(as_patient):
    html = as_patient.get(APPOINTMENTS).content.decode()

    assert "No upcoming appointments" in html
    assert reverse("portal:find") in html


# Cancel


def test_it_cancels_my_appointment_and_frees_the_seat(as_patient, booked, open_slot):
    response = as_patient.post(
        reverse("portal:cancel", args=[booked.pk]), {"reason": "Better", "token": token()}
    )

    assert response.status_code == 302
    assert response.url == reverse("portal:appointments")
    booked.refresh_from_db()
    open_slot.refresh_from_db()
    assert (booked.status, booked.cancellation_reason, open_slot.booked_count) == ("cancelled", "Better", 0)
    assert "is cancelled" in as_patient.get(response.url).content.decode()


def test_it_cancels_once_when_the_form_is_submitted_twice(as_patient, booked):
    data = {"reason": "", "token": token()}

    first = as_patient.post(reverse("portal:cancel", args=[booked.pk]), data)
    second = as_patient.post(reverse("portal:cancel", args=[booked.pk]), data)

    assert first.status_code == second.status_code == 302


def test_it_refuses_to_cancel_after_the_cut_off_and_says_why(as_patient, soon):
    page = as_patient.get(reverse("portal:cancel", args=[soon.pk]))
    assert "Online changes close 2 hours before the start" in page.content.decode()
    assert 'name="reason"' not in page.content.decode()

    response = as_patient.post(reverse("portal:cancel", args=[soon.pk]), {"token": token()})

    assert response.status_code == 409
    # The service's refusal, in the same words the page used in advance (shown once: instead of them).
    assert response.content.decode().count("Online changes close 2 hours before the start") == 1
    soon.refresh_from_db()
    assert soon.status == AppointmentStatus.BOOKED


def test_it_hides_the_buttons_past_the_cut_off_with_the_reason(as_patient, soon, booked, clinic):
    clinic.phone = "+44 20 7946 0000"
    clinic.save()

    response = as_patient.get(APPOINTMENTS)
    html = response.content.decode()

    assert reverse("portal:cancel", args=[booked.pk]) in html
    assert reverse("portal:cancel", args=[soon.pk]) not in html
    assert reverse("portal:reschedule", args=[soon.pk]) not in html
    assert "please call the clinic on +44 20 7946 0000" in html


def test_it_uses_the_clinics_own_cut_off(as_patient, soon, clinic):
    clinic.cancellation_cutoff_minutes = 30
    clinic.save()

    response = as_patient.post(reverse("portal:cancel", args=[soon.pk]), {"token": token()})

    assert response.status_code == 302
    soon.refresh_from_db()
    assert soon.status == AppointmentStatus.CANCELLED


def test_it_refuses_to_cancel_a_cancelled_appointment(as_patient, booked):
    appointment_cancel(actor=None, appointment=booked)

    response = as_patient.post(reverse("portal:cancel", args=[booked.pk]), {"token": token()})

    assert response.status_code == 409
    assert "cannot be cancelled" in response.content.decode()


def test_it_refuses_a_too_long_cancellation_reason_beside_the_field(as_patient, booked):
    response = as_patient.post(
        reverse("portal:cancel", args=[booked.pk]), {"reason": "x" * 501, "token": token()}
    )

    assert response.status_code == 400
    assert 'id="id_reason_error"' in response.content.decode()
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED


# Reschedule


def test_it_offers_open_slots_of_the_same_department(
    as_patient, org, booked, doctor, department, later_slot, clinic
):
    from tests.factories import DepartmentFactory

    elsewhere = DepartmentFactory(clinic=clinic)
    doctor.departments.add(elsewhere)
    make_slot(doctor, elsewhere, days=3, hour=15)

    response = as_patient.get(reverse("portal:reschedule", args=[booked.pk]))

    offered = {slot.pk for _, slots in response.context["groups"] for slot in slots}
    assert offered == {later_slot.pk}
    assert sum(d.open_count for d in response.context["days"]) == 1


def test_it_moves_my_appointment_to_the_chosen_slot(as_patient, booked, open_slot, later_slot):
    response = as_patient.post(
        reverse("portal:reschedule", args=[booked.pk]), {"slot": later_slot.pk, "token": token()}
    )

    assert response.status_code == 302
    assert response.url == reverse("portal:appointment", args=[booked.pk])
    booked.refresh_from_db()
    assert (booked.slot_id, booked.start, booked.reschedule_count) == (later_slot.pk, later_slot.start, 1)
    assert Slot.objects.get(pk=open_slot.pk).booked_count == 0
    assert "is moved to" in as_patient.get(response.url).content.decode()


def test_it_moves_once_when_the_form_is_submitted_twice(as_patient, booked, later_slot):
    data = {"slot": later_slot.pk, "token": token()}

    first = as_patient.post(reverse("portal:reschedule", args=[booked.pk]), data)
    second = as_patient.post(reverse("portal:reschedule", args=[booked.pk]), data)

    assert first.status_code == second.status_code == 302
    booked.refresh_from_db()
    assert booked.reschedule_count == 1


def test_it_says_beside_the_times_when_the_new_slot_was_taken_meanwhile(
    as_patient, other_patient, booked, later_slot, doctor, department
):
    spare = make_slot(doctor, department, days=3, hour=11, minute=15)
    appointment_book(actor=None, patient=other_patient, slot=later_slot)

    response = as_patient.post(
        reverse("portal:reschedule", args=[booked.pk]), {"slot": later_slot.pk, "token": token()}
    )

    assert response.status_code == 409
    assert "taken by someone else" in response.content.decode()
    offered = {slot.pk for _, slots in response.context["groups"] for slot in slots}
    assert offered == {spare.pk}
    assert response.context["day"] == later_slot.date
    booked.refresh_from_db()
    assert booked.slot_id != later_slot.pk


def test_it_asks_for_a_new_time_beside_the_times(as_patient, booked, later_slot):
    response = as_patient.post(reverse("portal:reschedule", args=[booked.pk]), {"token": token()})

    assert response.status_code == 400
    assert response.context["form"].errors["slot"] == ["Choose a new time."]
    assert 'id="slot_error"' in response.content.decode()


def test_it_refuses_a_slot_of_another_department(as_patient, booked, doctor, clinic):
    from tests.factories import DepartmentFactory

    elsewhere = DepartmentFactory(clinic=clinic)
    doctor.departments.add(elsewhere)
    foreign = make_slot(doctor, elsewhere, days=3, hour=15)

    response = as_patient.post(
        reverse("portal:reschedule", args=[booked.pk]), {"slot": foreign.pk, "token": token()}
    )

    assert response.status_code == 400
    assert "slot" in response.context["form"].errors
    booked.refresh_from_db()
    assert booked.slot_id != foreign.pk


def test_it_refuses_to_reschedule_after_the_cut_off_and_says_why(as_patient, soon, later_slot):
    page = as_patient.get(reverse("portal:reschedule", args=[soon.pk]))
    assert "can no longer be cancelled or rescheduled" in page.content.decode()
    assert 'name="slot"' not in page.content.decode()

    response = as_patient.post(
        reverse("portal:reschedule", args=[soon.pk]), {"slot": later_slot.pk, "token": token()}
    )

    assert response.status_code == 409
    # The service's refusal, in the same words the page used in advance (shown once: instead of them).
    assert response.content.decode().count("Online changes close 2 hours before the start") == 1
    soon.refresh_from_db()
    assert soon.slot_id != later_slot.pk


def test_it_shows_one_appointment_with_its_actions(as_patient, booked):
    html = as_patient.get(reverse("portal:appointment", args=[booked.pk])).content.decode()

    assert reverse("portal:appointment-ics", args=[booked.pk]) in html
    assert reverse("portal:reschedule", args=[booked.pk]) in html
    assert "You can cancel or reschedule online until" in html
