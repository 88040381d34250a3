"""Find an open time and book it: only open slots, clinic-local times, one booking per form."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from opd.core.models import IdempotencyRecord
from scheduling.models import Appointment, AppointmentStatus, BookingChannel, Slot
from scheduling.services import appointment_book
from tests.factories import ClinicFactory, DepartmentFactory, DoctorFactory, SlotFactory

from .conftest import at, make_slot

pytestmark = pytest.mark.django_db

FIND = "/portal/find/"


def book_url(slot) -> str:
    return reverse("portal:book", args=[slot.pk])


def token() -> str:
    return str(uuid.uuid4())


def find(client, department, **params):
    query = {"clinic": department.clinic_id, "department": department.pk, **params}
    return client.get(FIND, query)


def listed_slots(response) -> set[int]:
    return {slot.pk for _, slots in response.context["groups"] for slot in slots}


# Find


def test_it_opens_on_the_calendar_when_there_is_nothing_to_choose(as_patient, open_slot):
    response = as_patient.get(FIND)

    assert response.status_code == 200
    assert response.context["department"] == open_slot.department
    assert listed_slots(response) == {open_slot.pk}


def test_it_lists_only_open_future_slots_of_approved_doctors(
    as_patient, patient, other_patient, doctor, department, org
):
    open_one = make_slot(doctor, department, days=1, hour=9)
    full = make_slot(doctor, department, days=1, hour=10)
    appointment_book(actor=None, patient=other_patient, slot=full)
    make_slot(doctor, department, days=1, hour=11, is_active=False)
    make_slot(doctor, department, days=0, hour=0)  # today, already started
    pending = DoctorFactory(user__organization=org, departments=[department], approval_status="pending")
    make_slot(pending, department, days=1, hour=9)

    response = find(as_patient, department, day=open_one.date.isoformat())

    assert listed_slots(response) == {open_one.pk}


def test_it_shows_fourteen_days_and_counts_open_slots_per_clinic_day(as_patient, doctor, department):
    make_slot(doctor, department, days=1, hour=9)
    make_slot(doctor, department, days=1, hour=9, minute=15)
    make_slot(doctor, department, days=13, hour=9)
    make_slot(doctor, department, days=14, hour=9)  # outside the window

    days = find(as_patient, department).context["days"]

    assert len(days) == 14
    counts = [d.open_count for d in days]
    assert counts[1] == 2
    assert counts[13] == 1
    assert sum(counts) == 3


def test_it_shows_times_on_the_clinics_clock_and_names_the_zone(as_patient, org, doctor):
    kolkata = ClinicFactory(organization=org, time_zone="Asia/Kolkata", name="Kolkata Clinic")
    cardiology = DepartmentFactory(clinic=kolkata, name="Cardiology")
    doctor.departments.add(cardiology)
    slot = make_slot(doctor, cardiology, days=2, hour=10, minute=0)

    response = find(as_patient, cardiology)
    html = response.content.decode()

    assert slot.start.astimezone(dt.UTC).strftime("%H:%M") == "04:30"
    assert ">10:00<" in html
    assert ">04:30<" not in html
    assert "Asia/Kolkata" in html


def test_it_filters_by_doctor(as_patient, org, doctor, department):
    mine = make_slot(doctor, department, days=1, hour=9)
    other = DoctorFactory(user__organization=org, departments=[department])
    make_slot(other, department, days=1, hour=9)

    response = find(as_patient, department, doctor=doctor.pk)

    assert listed_slots(response) == {mine.pk}


def test_it_shows_only_the_chosen_day(as_patient, doctor, department):
    make_slot(doctor, department, days=1, hour=9)
    later = make_slot(doctor, department, days=3, hour=9)

    response = find(as_patient, department, day=later.date.isoformat())

    assert response.context["day"] == later.date
    assert listed_slots(response) == {later.pk}


def test_it_does_not_query_per_slot(as_patient, org, doctor, department, django_assert_max_num_queries):
    for hour in range(8, 16):
        make_slot(doctor, department, days=1, hour=hour)
    for _ in range(3):
        extra = DoctorFactory(user__organization=org, departments=[department])
        for hour in range(8, 16):
            make_slot(extra, department, days=1, hour=hour)

    with django_assert_max_num_queries(14):
        response = find(as_patient, department)

    assert len(listed_slots(response)) == 32


def test_it_says_beside_the_field_when_the_department_is_at_another_clinic(as_patient, clinic, other_clinic):
    elsewhere = DepartmentFactory(clinic=other_clinic)

    response = as_patient.get(FIND, {"clinic": clinic.pk, "department": elsewhere.pk})

    assert response.status_code == 400
    assert "department" in response.context["form"].errors
    assert 'id="id_department_error"' in response.content.decode()


def test_it_does_not_offer_another_organizations_departments(as_patient, department, other_org_department):
    response = as_patient.get(FIND, {"department": other_org_department.pk})

    assert response.status_code == 400
    assert "department" in response.context["form"].errors


def test_it_says_when_there_is_no_open_time(as_patient, department, doctor):
    response = find(as_patient, department)

    assert response.status_code == 200
    assert "No open times in the next 14 days" in response.content.decode()


# Book a chosen slot


def test_it_books_the_slot_with_the_reason_and_shows_the_confirmation(as_patient, patient, open_slot):
    response = as_patient.post(book_url(open_slot), {"reason": "Cough for two weeks", "token": token()})

    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("portal:confirmation", args=[appointment.pk])
    assert (appointment.patient_id, appointment.slot_id, appointment.reason) == (
        patient.pk,
        open_slot.pk,
        "Cough for two weeks",
    )
    assert appointment.channel == BookingChannel.PORTAL
    assert appointment.booked_by_id == patient.user_id

    page = as_patient.get(response.url)
    html = page.content.decode()
    assert "You're booked" in html
    assert reverse("portal:appointment-ics", args=[appointment.pk]) in html
    assert "Europe/London" in html


def test_it_books_once_when_the_form_is_submitted_twice(as_patient, open_slot, doctor):
    open_slot.capacity = 3
    open_slot.save()
    data = {"reason": "Headache", "token": token()}

    first = as_patient.post(book_url(open_slot), data)
    second = as_patient.post(book_url(open_slot), data)

    assert Appointment.objects.count() == 1
    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    open_slot.refresh_from_db()
    assert open_slot.booked_count == 1


def test_it_books_again_with_a_new_form(as_patient, open_slot, later_slot):
    as_patient.post(book_url(open_slot), {"reason": "One", "token": token()})
    as_patient.post(book_url(later_slot), {"reason": "Two", "token": token()})

    assert Appointment.objects.count() == 2


def test_it_renders_a_fresh_token_in_every_form(as_patient, open_slot):
    first = as_patient.get(book_url(open_slot)).context["form"]["token"].value()
    second = as_patient.get(book_url(open_slot)).context["form"]["token"].value()

    assert first != second
    uuid.UUID(str(first))


def test_it_asks_for_a_reason_beside_the_field_and_books_nothing(as_patient, open_slot):
    response = as_patient.post(book_url(open_slot), {"reason": "", "token": token()})

    assert response.status_code == 400
    assert response.context["form"].errors["reason"] == ["Tell the doctor briefly why you are coming."]
    assert 'id="id_reason_error"' in response.content.decode()
    assert not Appointment.objects.exists()


def test_it_refuses_a_reason_that_is_too_long(as_patient, open_slot):
    response = as_patient.post(book_url(open_slot), {"reason": "x" * 501, "token": token()})

    assert "reason" in response.context["form"].errors
    assert not Appointment.objects.exists()


def test_it_asks_to_submit_again_when_the_form_token_is_missing(as_patient, open_slot):
    response = as_patient.post(book_url(open_slot), {"reason": "Cough", "token": "forged"})

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert uuid.UUID(response.context["form"]["token"].value())
    assert not Appointment.objects.exists()


def test_it_offers_the_nearest_open_times_when_the_slot_was_taken_meanwhile(
    as_patient, other_patient, doctor, department
):
    wanted = make_slot(doctor, department, days=2, hour=10)
    nearest = make_slot(doctor, department, days=2, hour=10, minute=15)
    earlier = make_slot(doctor, department, days=2, hour=9, minute=30)
    far = make_slot(doctor, department, days=9, hour=10)
    form_token = as_patient.get(book_url(wanted)).context["form"]["token"].value()
    taken = appointment_book(actor=None, patient=other_patient, slot=wanted)  # someone else, meanwhile

    response = as_patient.post(book_url(wanted), {"reason": "Cough", "token": form_token})

    assert response.status_code == 409
    html = response.content.decode()
    assert "taken by someone else" in html
    assert "Nothing was booked" in html
    alternatives = [slot.pk for slot in response.context["alternatives"]]
    assert alternatives[:2] == [earlier.pk, nearest.pk]
    assert far.pk in alternatives
    assert wanted.pk not in alternatives
    assert book_url(nearest) + "?reason=Cough" in html
    assert list(Appointment.objects.values_list("pk", flat=True)) == [taken.pk]
    assert not IdempotencyRecord.objects.exists()


def test_it_says_a_full_slot_is_gone_when_opened(as_patient, other_patient, open_slot, later_slot):
    appointment_book(actor=None, patient=other_patient, slot=open_slot)

    response = as_patient.get(book_url(open_slot))

    assert response.status_code == 200
    assert response.context["is_open"] is False
    assert [s.pk for s in response.context["alternatives"]] == [later_slot.pk]
    assert 'name="reason"' not in response.content.decode()


def test_it_prefills_the_reason_when_coming_from_an_alternative(as_patient, open_slot):
    response = as_patient.get(book_url(open_slot), {"reason": "Cough"})

    assert response.context["form"]["reason"].value() == "Cough"


def test_it_says_when_the_patient_already_has_an_appointment_then(
    as_patient, patient, org, department, open_slot
):
    other_doctor = DoctorFactory(user__organization=org, departments=[department])
    same_time = SlotFactory(doctor=other_doctor, department=department, start=open_slot.start)
    appointment_book(actor=None, patient=patient, slot=open_slot)

    response = as_patient.post(book_url(same_time), {"reason": "Again", "token": token()})

    assert response.status_code == 409
    assert "You already have an appointment then" in response.content.decode()
    assert Appointment.objects.count() == 1


def test_it_refuses_a_slot_that_has_started(as_patient, open_slot):
    Slot.objects.filter(pk=open_slot.pk).update(start=timezone.now() - dt.timedelta(minutes=5))

    response = as_patient.post(book_url(open_slot), {"reason": "Late", "token": token()})

    assert response.status_code == 400
    assert "already started" in response.content.decode()
    assert not Appointment.objects.exists()


# First available


def test_it_books_the_first_available_slot(as_patient, patient, department, doctor):
    later = make_slot(doctor, department, days=3, hour=9)
    first = make_slot(doctor, department, days=1, hour=15)
    url = reverse("portal:book-first-available", args=[department.pk])

    page = as_patient.get(url)
    response = as_patient.post(url, {"reason": "Check-up", "token": token()})

    assert page.context["first_day"] == first.date
    appointment = Appointment.objects.get()
    assert response.url == reverse("portal:confirmation", args=[appointment.pk])
    assert (appointment.slot_id, appointment.channel, appointment.reason) == (first.pk, "portal", "Check-up")
    assert later.pk != appointment.slot_id


def test_it_books_the_first_available_once_when_submitted_twice(as_patient, department, doctor):
    make_slot(doctor, department, days=1, hour=9)
    make_slot(doctor, department, days=1, hour=10)
    url = reverse("portal:book-first-available", args=[department.pk])
    data = {"reason": "Check-up", "token": token()}

    first = as_patient.post(url, data)
    second = as_patient.post(url, data)

    assert Appointment.objects.count() == 1
    assert first.url == second.url


def test_it_says_when_nothing_is_left_for_first_available(as_patient, department, doctor):
    url = reverse("portal:book-first-available", args=[department.pk])

    response = as_patient.post(url, {"reason": "Check-up", "token": token()})

    assert response.status_code == 409
    assert "no open time left" in response.content.decode()
    assert not Appointment.objects.exists()


def test_it_asks_for_a_reason_for_first_available_too(as_patient, department, open_slot):
    url = reverse("portal:book-first-available", args=[department.pk])

    response = as_patient.post(url, {"reason": "", "token": token()})

    assert response.status_code == 400
    assert "reason" in response.context["form"].errors
    assert not Appointment.objects.exists()


def test_it_refuses_an_inactive_patient_with_the_services_message(as_patient, patient, open_slot):
    patient.status = "inactive"
    patient.save(update_fields=["status"])

    response = as_patient.post(book_url(open_slot), {"reason": "Cough", "token": token()})

    assert response.status_code == 400
    assert "inactive" in response.content.decode()
    assert Appointment.objects.filter(status=AppointmentStatus.BOOKED).count() == 0


def test_it_shows_the_slot_time_on_the_clinic_clock_with_the_zone(as_patient, doctor, department):
    slot = make_slot(doctor, department, days=5, hour=8, minute=45)

    html = as_patient.get(book_url(slot)).content.decode()

    local = at(department.clinic, days=5, hour=8, minute=45)
    assert f"{local:%a %d %b %Y}, 08:45 Europe/London" in html
