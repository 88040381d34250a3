import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opd.core.models import AuditEvent, IdempotencyRecord
from patients.models import PatientStatus
from scheduling.models import Appointment, AppointmentStatus, Slot
from scheduling.services import appointment_book, appointment_cancel
from tests.conftest import assert_error, future_slot
from tests.factories import DoctorFactory, PatientFactory, SlotFactory, UserFactory

pytestmark = pytest.mark.django_db

APPOINTMENTS = "/api/v1/appointments/"


def detail(appointment) -> str:
    return f"{APPOINTMENTS}{appointment.pk}/"


def local_time(clinic, *, days: int, hour: int, minute: int = 0) -> dt.datetime:
    day = timezone.localdate(timezone=clinic.tz) + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=clinic.tz)


def database_state() -> tuple:
    """Everything a booking request could change; equal before and after means nothing was written."""
    return (
        list(Appointment.objects.order_by("pk").values_list("pk", "status", "slot_id", "seat")),
        list(Slot.objects.order_by("pk").values_list("pk", "booked_count")),
        AuditEvent.objects.count(),
        IdempotencyRecord.objects.count(),
    )


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def north_slot(other_clinic_doctor, other_clinic_department):
    return SlotFactory(doctor=other_clinic_doctor, department=other_clinic_department)


@pytest.fixture
def foreign_slot(other_org_doctor, other_org_department):
    return SlotFactory(doctor=other_org_doctor, department=other_org_department)


# Booking a slot


def test_it_books_a_slot_and_answers_with_the_appointment(api_as, staff_user, patient, slot, doctor):
    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk, "reason": "Cough"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    appointment = Appointment.objects.get()
    assert body["id"] == appointment.pk
    assert body["status"] == "booked"
    assert body["patient"] == {"id": patient.pk, "mrn": patient.mrn, "name": "Ada Lovelace"}
    assert body["doctor"] == {"id": doctor.pk, "name": doctor.display_name}
    assert body["department"] == {"id": slot.department_id, "name": "General medicine"}
    assert body["clinic"] == {"id": slot.clinic_id, "name": "Riverside Central", "time_zone": "Europe/London"}
    assert body["slot"] == slot.pk
    assert body["start"] == slot.start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    assert body["local_start"] == timezone.localtime(slot.start, slot.clinic.tz).isoformat()
    assert (body["reason"], body["channel"]) == ("Cough", "api")
    assert body["booked_at"].endswith("Z")
    assert body["cancelled_at"] is None
    assert body["checked_in_at"] is None
    assert appointment.booked_by == staff_user
    slot.refresh_from_db()
    assert slot.booked_count == 1


def test_it_lets_a_patient_book_for_themselves_without_naming_the_patient(api_as, patient, slot):
    response = api_as(patient.user).post(APPOINTMENTS, {"slot": slot.pk}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["patient"]["id"] == patient.pk
    assert Appointment.objects.get().patient == patient


def test_it_lets_a_patient_name_their_own_record(api_as, patient, slot):
    response = api_as(patient.user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json"
    )

    assert response.status_code == 201


def test_it_answers_404_to_a_patient_booking_for_another_patient(api_as, patient, other_patient, slot):
    before = database_state()

    response = api_as(patient.user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": other_patient.pk}, format="json"
    )

    assert_error(response, 404, "not_found", {"patient"})
    assert database_state() == before


def test_it_requires_staff_to_name_the_patient(api_as, staff_user, slot):
    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk}, format="json")

    assert_error(response, 400, "invalid", {"patient"})
    assert not Appointment.objects.exists()


def test_it_lets_an_admin_book_at_any_clinic_of_the_organization(api_as, admin_user, patient, north_slot):
    response = api_as(admin_user).post(
        APPOINTMENTS, {"slot": north_slot.pk, "patient": patient.pk}, format="json"
    )

    assert response.status_code == 201


def test_it_refuses_doctors_to_book(api_as, doctor, patient, slot):
    before = database_state()

    response = api_as(doctor.user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert_error(response, 403, "permission_denied")
    assert database_state() == before


def test_it_refuses_anonymous_users(api, patient, slot):
    response = api.post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert_error(response, 401, "not_authenticated")
    assert not Appointment.objects.exists()


def test_it_refuses_a_full_slot(api_as, staff_user, patient, other_patient, doctor, department):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    before = database_state()

    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert_error(response, 409, "slot_full", {"slot"})
    assert database_state() == before
    slot.refresh_from_db()
    assert slot.booked_count == 1


def test_it_refuses_an_overlapping_appointment_of_the_patient(api_as, staff_user, patient, slot, department):
    appointment_book(actor=staff_user, patient=patient, slot=slot)
    overlapping = SlotFactory(department=department, start=slot.start + dt.timedelta(minutes=5))
    before = database_state()

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": overlapping.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 409, "overlap", {"patient"})
    assert database_state() == before


def test_it_refuses_a_past_slot(api_as, patient, doctor, department):
    past = SlotFactory(doctor=doctor, department=department, start=timezone.now() - dt.timedelta(hours=1))
    before = database_state()

    response = api_as(patient.user).post(APPOINTMENTS, {"slot": past.pk}, format="json")

    assert_error(response, 400, "invalid", {"slot"})
    assert database_state() == before


def test_it_refuses_an_inactive_patient(api_as, staff_user, org, slot):
    inactive = PatientFactory(organization=org, status=PatientStatus.INACTIVE)
    before = database_state()

    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk, "patient": inactive.pk}, format="json")

    assert_error(response, 400, "invalid", {"patient"})
    assert database_state() == before


def test_it_answers_404_for_another_organizations_slot(api_as, staff_user, patient, foreign_slot):
    before = database_state()

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": foreign_slot.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 404, "not_found", {"slot"})
    assert database_state() == before


def test_it_answers_404_for_another_organizations_patient(api_as, staff_user, other_org_patient, slot):
    before = database_state()

    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": other_org_patient.pk}, format="json"
    )

    assert_error(response, 404, "not_found", {"patient"})
    assert database_state() == before


def test_it_answers_404_for_a_slot_at_a_clinic_the_staff_member_does_not_work_at(
    api_as, staff_user, patient, north_slot
):
    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": north_slot.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 404, "not_found", {"slot"})
    assert not Appointment.objects.exists()


def test_it_names_both_fields_when_given_both_slot_and_department(
    api_as, staff_user, patient, slot, department
):
    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "department": department.pk, "patient": patient.pk}, format="json"
    )

    error = assert_error(response, 400, "invalid", {"slot", "department"})
    assert "not both" in error["fields"]["slot"][0]


def test_it_names_both_fields_when_given_neither_slot_nor_department(api_as, staff_user, patient):
    response = api_as(staff_user).post(APPOINTMENTS, {"patient": patient.pk}, format="json")

    assert_error(response, 400, "invalid", {"slot", "department"})


def test_it_refuses_malformed_json(api_as, staff_user):
    before = database_state()

    response = api_as(staff_user).post(APPOINTMENTS, '{"slot": 1,', content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slot": "abc"}, "slot"),
        ({"slot": [1]}, "slot"),
        ({"slot": 1.5}, "slot"),
        ({"slot": True}, "slot"),
        ({"slot": None}, "slot"),
        ({"reason": "x" * 501}, "reason"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_it_refuses_wrong_types_naming_the_field(api_as, staff_user, patient, slot, body, field):
    response = api_as(staff_user).post(
        APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk, **body}, format="json"
    )

    error = assert_error(response, 400, "invalid")
    assert field in error["fields"]
    assert not Appointment.objects.exists()


def test_it_refuses_a_body_that_is_not_an_object(api_as, staff_user):
    response = api_as(staff_user).post(APPOINTMENTS, [1, 2], format="json")

    assert_error(response, 400, "invalid")


# Booking the first available slot


@pytest.fixture
def two_doctors(org, doctor, department):
    return doctor, DoctorFactory(user__organization=org, departments=[department])


def test_it_books_the_least_busy_doctor_first_then_the_earliest_slot(
    api_as, staff_user, org, clinic, department, patient, other_patient, two_doctors
):
    busy, free = two_doctors
    taken = SlotFactory(doctor=busy, department=department, start=local_time(clinic, days=2, hour=9))
    busy_later = SlotFactory(
        doctor=busy, department=department, start=local_time(clinic, days=2, hour=9, minute=30)
    )
    free_later = SlotFactory(doctor=free, department=department, start=local_time(clinic, days=2, hour=10))
    appointment_book(actor=staff_user, patient=other_patient, slot=taken)
    client = api_as(staff_user)

    first = client.post(APPOINTMENTS, {"department": department.pk, "patient": patient.pk}, format="json")
    # Now both doctors have one booking that day: the earliest open slot wins.
    second = client.post(
        APPOINTMENTS,
        {"department": department.pk, "patient": PatientFactory(organization=org).pk},
        format="json",
    )

    assert first.status_code == 201, first.content
    assert (first.json()["doctor"]["id"], first.json()["slot"]) == (free.pk, free_later.pk)
    assert second.status_code == 201, second.content
    assert (second.json()["doctor"]["id"], second.json()["slot"]) == (busy.pk, busy_later.pk)


def test_it_books_the_first_available_slot_inside_the_window(
    api_as, patient, clinic, department, two_doctors
):
    early_doctor, late_doctor = two_doctors
    early = SlotFactory(doctor=early_doctor, department=department, start=local_time(clinic, days=2, hour=9))
    late = SlotFactory(doctor=late_doctor, department=department, start=local_time(clinic, days=2, hour=10))
    client = api_as(patient.user)

    after = client.post(
        APPOINTMENTS,
        {"department": department.pk, "after": local_time(clinic, days=2, hour=9, minute=30).isoformat()},
        format="json",
    )
    client.post(f"{detail(Appointment.objects.get())}cancel/", format="json")
    before = client.post(
        APPOINTMENTS,
        {"department": department.pk, "before": local_time(clinic, days=2, hour=9, minute=20).isoformat()},
        format="json",
    )

    assert after.status_code == 201, after.content
    assert after.json()["slot"] == late.pk
    assert before.status_code == 201, before.content
    assert before.json()["slot"] == early.pk


def test_it_answers_409_when_no_slot_is_open_in_the_department(api_as, staff_user, patient, department):
    before = database_state()

    response = api_as(staff_user).post(
        APPOINTMENTS, {"department": department.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 409, "no_slot", {"department"})
    assert database_state() == before


def test_it_answers_404_for_another_organizations_department(
    api_as, staff_user, patient, other_org_department, foreign_slot
):
    response = api_as(staff_user).post(
        APPOINTMENTS, {"department": other_org_department.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 404, "not_found", {"department"})
    assert not Appointment.objects.exists()


def test_it_refuses_a_window_time_without_an_offset(api_as, patient, department):
    response = api_as(patient.user).post(
        APPOINTMENTS, {"department": department.pk, "after": "2030-01-01T09:00:00"}, format="json"
    )

    error = assert_error(response, 400, "invalid", {"after"})
    assert "offset" in error["fields"]["after"][0]


def test_it_refuses_a_window_with_a_slot(api_as, patient, slot):
    response = api_as(patient.user).post(
        APPOINTMENTS, {"slot": slot.pk, "before": "2030-01-01T09:00:00Z"}, format="json"
    )

    assert_error(response, 400, "invalid", {"before"})


def test_it_refuses_a_window_that_ends_before_it_starts(api_as, patient, slot, department):
    response = api_as(patient.user).post(
        APPOINTMENTS,
        {
            "department": department.pk,
            "after": "2030-01-02T09:00:00Z",
            "before": "2030-01-01T09:00:00Z",
        },
        format="json",
    )

    assert_error(response, 400, "invalid", {"before"})


def test_it_refuses_doctors_to_book_the_first_available(api_as, doctor, patient, slot, department):
    response = api_as(doctor.user).post(
        APPOINTMENTS, {"department": department.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 403, "permission_denied")
    assert not Appointment.objects.exists()


# Reading


@pytest.fixture
def booked(
    staff_user, admin_user, patient, other_patient, org, slot, north_slot, foreign_slot, other_org_patient
):
    """One appointment at each clinic of the organization and one in the other organization."""
    central = appointment_book(actor=staff_user, patient=patient, slot=slot)
    north = appointment_book(actor=admin_user, patient=other_patient, slot=north_slot)
    foreign = appointment_book(actor=None, patient=other_org_patient, slot=foreign_slot)
    return central, north, foreign


@pytest.mark.parametrize(
    ("persona", "sees"),
    [
        ("admin_user", {"central", "north"}),
        ("staff_user", {"central"}),
        ("other_clinic_staff", {"north"}),
        ("doctor", {"central"}),
        ("patient", {"central"}),
        ("other_patient", {"north"}),
    ],
)
def test_it_lists_only_the_appointments_a_user_may_see(request, api_as, booked, persona, sees):
    user = request.getfixturevalue(persona)
    user = getattr(user, "user", user)  # doctors and patients sign in as their user
    central, north, _ = booked
    by_name = {"central": central.pk, "north": north.pk}

    assert sorted(ids(api_as(user).get(APPOINTMENTS))) == sorted(by_name[name] for name in sees)


def test_it_shows_a_superuser_every_organizations_appointments(api_as, booked):
    superuser = UserFactory(is_superuser=True, organization=None)

    assert sorted(ids(api_as(superuser).get(APPOINTMENTS))) == sorted(a.pk for a in booked)


def test_it_answers_404_for_an_appointment_the_user_may_not_see(
    api_as, booked, staff_user, patient, other_org_doctor
):
    central, north, foreign = booked

    for user, appointment in [
        (staff_user, north),
        (staff_user, foreign),
        (patient.user, north),
        (other_org_doctor.user, central),
    ]:
        assert_error(api_as(user).get(detail(appointment)), 404, "not_found")
    assert api_as(patient.user).get(detail(central)).status_code == 200


def test_it_answers_404_for_an_id_that_is_not_a_number(api_as, staff_user):
    assert_error(api_as(staff_user).get(f"{APPOINTMENTS}abc/"), 404, "not_found")


def test_it_filters_by_slot_patient_and_doctor(api_as, admin_user, booked, slot, patient, north_slot):
    central, north, _ = booked
    client = api_as(admin_user)

    assert ids(client.get(APPOINTMENTS, {"slot": slot.pk})) == [central.pk]
    assert ids(client.get(APPOINTMENTS, {"patient": patient.pk})) == [central.pk]
    assert ids(client.get(APPOINTMENTS, {"doctor": north_slot.doctor_id})) == [north.pk]


def test_it_filters_by_status(api_as, admin_user, booked):
    central, north, _ = booked
    appointment_cancel(actor=admin_user, appointment=north)
    client = api_as(admin_user)

    assert ids(client.get(APPOINTMENTS, {"status": "cancelled"})) == [north.pk]
    assert ids(client.get(APPOINTMENTS, {"status": "booked"})) == [central.pk]


def test_it_filters_by_the_clinic_local_day(
    api_as, staff_user, clinic, department, doctor, patient, other_patient
):
    today = SlotFactory(doctor=doctor, department=department, start=local_time(clinic, days=1, hour=23))
    tomorrow = SlotFactory(doctor=doctor, department=department, start=local_time(clinic, days=2, hour=0))
    first = appointment_book(actor=staff_user, patient=patient, slot=today)
    second = appointment_book(actor=staff_user, patient=other_patient, slot=tomorrow)
    client = api_as(staff_user)

    assert ids(client.get(APPOINTMENTS, {"date": today.date.isoformat()})) == [first.pk]
    assert ids(client.get(APPOINTMENTS, {"date": tomorrow.date.isoformat()})) == [second.pk]


@pytest.mark.parametrize(
    ("param", "value"),
    [("status", "lost"), ("date", "2030-02-30"), ("slot", "one"), ("patient", "2.5"), ("doctor", "-")],
)
def test_it_refuses_a_malformed_filter_naming_it(api_as, staff_user, param, value):
    response = api_as(staff_user).get(APPOINTMENTS, {param: value})

    assert_error(response, 400, "invalid", {param})


def test_it_paginates_with_page_and_page_size(api_as, staff_user, department, patient):
    appointments = [
        appointment_book(actor=staff_user, patient=patient, slot=SlotFactory(department=department))
        for _ in range(3)
    ]
    client = api_as(staff_user)

    page = client.get(APPOINTMENTS, {"page_size": 2, "page": 2}).json()

    assert page["count"] == 3
    assert [row["id"] for row in page["results"]] == [appointments[2].pk]
    assert page["next"] is None
    assert "page_size=2" in page["previous"]


@pytest.mark.parametrize("persona", ["staff_user", "patient"])
def test_a_page_of_twenty_appointments_costs_the_same_queries_as_three(
    request, api_as, staff_user, org, department, persona, django_assert_num_queries
):
    user = request.getfixturevalue(persona)
    me = user if persona == "patient" else None
    client = api_as(getattr(user, "user", user))

    def book(n: int) -> None:
        for _ in range(n):
            # A new doctor and patient each time, so nothing could be served from one cached row.
            appointment_book(
                actor=staff_user,
                patient=me or PatientFactory(organization=org),
                slot=SlotFactory(department=department),
            )

    book(3)
    with CaptureQueriesContext(connection) as three:
        assert len(ids(client.get(APPOINTMENTS))) == 3
    book(17)

    with django_assert_num_queries(len(three)):
        assert len(ids(client.get(APPOINTMENTS))) == 20


# Cancelling


def cancel(client, appointment, body=None, **extra):
    return client.post(f"{detail(appointment)}cancel/", body or {}, format="json", **extra)


def reschedule(client, appointment, slot_id, **extra):
    return client.post(f"{detail(appointment)}reschedule/", {"slot": slot_id}, format="json", **extra)


@pytest.fixture
def appointment(staff_user, patient, slot):
    return appointment_book(actor=staff_user, patient=patient, slot=slot)


def test_it_cancels_an_appointment_and_frees_the_seat(api_as, staff_user, appointment, slot):
    response = cancel(api_as(staff_user), appointment, {"reason": "Feeling better"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancellation_reason"] == "Feeling better"
    assert body["cancelled_at"].endswith("Z")
    slot.refresh_from_db()
    assert slot.booked_count == 0


def test_it_lets_a_patient_cancel_their_own_appointment(api_as, patient, appointment):
    response = cancel(api_as(patient.user), appointment)

    assert response.status_code == 200
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by == patient.user


def test_it_refuses_a_patient_cancelling_after_the_clinics_cut_off(
    api_as, staff_user, patient, doctor, department
):
    soon = SlotFactory(doctor=doctor, department=department, start=timezone.now() + dt.timedelta(minutes=30))
    appointment = appointment_book(actor=staff_user, patient=patient, slot=soon)
    before = database_state()

    response = cancel(api_as(patient.user), appointment)

    assert_error(response, 409, "cutoff_passed")
    assert database_state() == before
    # Reception may still cancel it.
    assert cancel(api_as(staff_user), appointment).status_code == 200


def test_it_refuses_to_cancel_a_cancelled_appointment(api_as, staff_user, appointment):
    client = api_as(staff_user)
    cancel(client, appointment)
    before = database_state()

    assert_error(cancel(client, appointment), 409, "invalid_state")
    assert database_state() == before


def test_it_refuses_doctors_to_cancel(api_as, doctor, appointment):
    before = database_state()

    assert_error(cancel(api_as(doctor.user), appointment), 403, "permission_denied")
    assert database_state() == before


def test_it_answers_404_to_a_patient_cancelling_another_patients_appointment(
    api_as, other_patient, appointment
):
    before = database_state()

    assert_error(cancel(api_as(other_patient.user), appointment), 404, "not_found")
    assert database_state() == before


def test_it_answers_404_to_staff_cancelling_at_another_clinic(api_as, other_clinic_staff, appointment):
    assert_error(cancel(api_as(other_clinic_staff), appointment), 404, "not_found")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


# Rescheduling


def test_it_moves_an_appointment_to_another_slot(api_as, staff_user, appointment, slot, doctor, department):
    new_slot = SlotFactory(doctor=doctor, department=department, start=slot.start + dt.timedelta(hours=2))

    response = reschedule(api_as(staff_user), appointment, new_slot.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["slot"] == new_slot.pk
    assert body["reschedule_count"] == 1
    assert body["start"] == new_slot.start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    slot.refresh_from_db()
    new_slot.refresh_from_db()
    assert (slot.booked_count, new_slot.booked_count) == (0, 1)


def test_it_lets_a_patient_reschedule_their_own_appointment(api_as, patient, appointment, doctor, department):
    new_slot = SlotFactory(doctor=doctor, department=department)

    response = reschedule(api_as(patient.user), appointment, new_slot.pk)

    assert response.status_code == 200, response.content
    appointment.refresh_from_db()
    assert appointment.slot == new_slot


def test_it_refuses_to_reschedule_into_a_full_slot(
    api_as, staff_user, appointment, other_patient, doctor, department
):
    full = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=other_patient, slot=full)
    before = database_state()

    assert_error(reschedule(api_as(staff_user), appointment, full.pk), 409, "slot_full", {"slot"})
    assert database_state() == before


def test_it_answers_404_for_a_new_slot_of_another_organization(api_as, staff_user, appointment, foreign_slot):
    before = database_state()

    assert_error(reschedule(api_as(staff_user), appointment, foreign_slot.pk), 404, "not_found", {"slot"})
    assert database_state() == before


def test_it_refuses_doctors_to_reschedule(api_as, doctor, appointment, department):
    new_slot = SlotFactory(doctor=doctor, department=department)

    assert_error(reschedule(api_as(doctor.user), appointment, new_slot.pk), 403, "permission_denied")
    appointment.refresh_from_db()
    assert appointment.slot_id != new_slot.pk


def test_it_requires_the_new_slot(api_as, staff_user, appointment):
    response = api_as(staff_user).post(f"{detail(appointment)}reschedule/", {}, format="json")

    assert_error(response, 400, "invalid", {"slot"})


def test_it_refuses_to_reschedule_a_cancelled_appointment(
    api_as, staff_user, appointment, doctor, department
):
    client = api_as(staff_user)
    cancel(client, appointment)
    new_slot = SlotFactory(doctor=doctor, department=department)
    before = database_state()

    assert_error(reschedule(client, appointment, new_slot.pk), 409, "invalid_state")
    assert database_state() == before


def test_it_refuses_a_patient_rescheduling_after_the_clinics_cut_off(
    api_as, staff_user, patient, doctor, department
):
    soon = SlotFactory(doctor=doctor, department=department, start=timezone.now() + dt.timedelta(minutes=30))
    appointment = appointment_book(actor=staff_user, patient=patient, slot=soon)
    later = SlotFactory(doctor=doctor, department=department)
    before = database_state()

    assert_error(reschedule(api_as(patient.user), appointment, later.pk), 409, "cutoff_passed")
    assert database_state() == before


def test_it_answers_404_to_staff_rescheduling_at_another_clinic(
    api_as, other_clinic_staff, appointment, north_slot
):
    before = database_state()

    assert_error(reschedule(api_as(other_clinic_staff), appointment, north_slot.pk), 404, "not_found")
    assert database_state() == before


def _outer(sql: str) -> str:
    """The statement without its parenthesised parts (subqueries, column lists)."""
    depth, kept = 0, []
    for ch in sql:
        depth += ch == "("
        if depth == 0:
            kept.append(ch)
        depth -= ch == ")"
    return "".join(kept)


def _statements(captured) -> list[str]:
    """Each round trip as its verb and the tables of its outermost FROM/INTO/UPDATE (+ FOR UPDATE)."""
    named = []
    for query in captured:
        sql = _outer(query["sql"])
        verb = sql.split(None, 1)[0].upper()
        if verb in ("BEGIN", "COMMIT"):
            named.append(verb)
            continue
        where = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(.+?)(?:\bWHERE\b|\bSET\b|\bVALUES\b|\bLIMIT\b|$)", sql)
        # The tables named, not the columns of a join's ON condition.
        source = re.sub(r"\bON\b.*?(?=\b(?:LEFT|INNER|JOIN)\b|$)", "", where.group(1)) if where else ""
        tables = re.findall(r"`(\w+)`", source)
        named.append(
            " ".join([verb, *tables]) + (" FOR UPDATE" if sql.rstrip().endswith("FOR UPDATE") else "")
        )
    return named


# A booking's round trips as in production: no test transaction around it (so no savepoints of the
# test's own), Celery tasks queued to the broker rather than run here. Besides the transaction's BEGIN and
# COMMIT: the token's read (none once opd.core.token_cache holds the check; off in tests); one locking read of the patient and the slot with all the booking checks and
# answers (the door's scope folded in; the service's block needs no savepoint inside the action's own
# transaction); the seat's UPDATE; the appointment's, the audit's and the outbox event's INSERTs (the
# event's delivery happens after COMMIT, the outbox row marked delivered later, off the request). Nothing
# is read back: six statements.
BOOKING_STATEMENTS = [
    "SELECT core_apitoken core_user core_organization",
    "BEGIN",
    "SELECT patients_patient scheduling_slot FOR UPDATE",
    "UPDATE scheduling_slot",
    "INSERT scheduling_appointment",
    "INSERT core_auditevent",
    "INSERT core_outboxevent",
    "COMMIT",
]


@pytest.mark.django_db(transaction=True)
def test_a_booking_is_six_statements_and_answers_what_reading_it_back_shows(
    api_as, staff_user, patient, slot, tasks_queued_not_run
):
    client = api_as(staff_user)
    with CaptureQueriesContext(connection) as captured:
        response = client.post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert response.status_code == 201, response.content
    assert _statements(captured) == BOOKING_STATEMENTS
    assert response.json() == client.get(detail(Appointment.objects.get())).json()
    slot.refresh_from_db()
    assert slot.booked_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_patient_booking_for_themselves_is_six_statements_too(api_as, patient, slot, tasks_queued_not_run):
    client = api_as(patient.user)
    # Their own record is found by the same locking read; the booking cap's count is a part of it.
    with CaptureQueriesContext(connection) as captured:
        response = client.post(APPOINTMENTS, {"slot": slot.pk}, format="json")

    assert response.status_code == 201, response.content
    assert _statements(captured) == BOOKING_STATEMENTS
    assert response.json()["patient"]["id"] == patient.pk
    assert response.json() == client.get(detail(Appointment.objects.get())).json()


def test_each_answer_has_fields_of_its_own_though_they_are_built_once_per_class(
    staff_user, patient, other_patient, doctor, department
):
    # AppointmentSerializer builds its fields from the model once (FieldsBuiltOnce) and copies them: two
    # answers built side by side (two request threads) each show their own appointment.
    from scheduling.api.serializers import AppointmentSerializer

    first = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    second = appointment_book(actor=staff_user, patient=other_patient, slot=future_slot(doctor, department))
    a, b = AppointmentSerializer(first), AppointmentSerializer(second)

    assert a.fields["patient"] is not b.fields["patient"]
    # Plain fields are copies of their attributes, nested serializers deep copies: each bound to its own.
    for name in ("start", "status", "local_start", "patient"):
        assert a.fields[name] is not b.fields[name]
        assert (a.fields[name].parent, b.fields[name].parent) == (a, b)
    assert a.fields["patient"].fields["name"] is not b.fields["patient"].fields["name"]
    assert (a.data["patient"]["id"], b.data["patient"]["id"]) == (patient.pk, other_patient.pk)
    assert (a.data["slot"], b.data["slot"]) == (first.slot_id, second.slot_id)
