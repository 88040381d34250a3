"""Today at the desk (scheduling.admin.desk): the day's arrivals, search, booking, walk-ins, check-in with
a token slip, reschedule and cancel, all in the clinic's time; who may use each page; bad input."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from opd.core.models import AuditEvent, Role
from scheduling.models import Appointment, AppointmentStatus, Slot
from tests.conftest import CLINIC_ZONE
from tests.factories import (
    ClinicFactory,
    DepartmentFactory,
    DoctorFactory,
    PatientFactory,
    SlotFactory,
    UserFactory,
)

# "UTC" as staff would read it: not three letters inside a random CSRF token or CSP nonce of the page.
STAFF_UTC = re.compile(r"(?<![A-Za-z0-9+/=_-])UTC(?![A-Za-z0-9+/=_-])")

pytestmark = pytest.mark.django_db

TODAY_URL = "/admin/scheduling/appointment/today/"
BOOK_URL = "/admin/scheduling/appointment/today/book/"


def at_today(hour: int, minute: int = 0) -> dt.datetime:
    """A moment today on the London clinic's clock (the `daytime` fixture pins 10:00 there)."""
    today = timezone.now().astimezone(CLINIC_ZONE).date()
    return dt.datetime.combine(today, dt.time(hour, minute), tzinfo=CLINIC_ZONE)


def slot_at(doctor, department, start: dt.datetime, capacity: int = 2) -> Slot:
    return SlotFactory(doctor=doctor, department=department, start=start, capacity=capacity)


def action_url(appointment, action: str) -> str:
    return f"/admin/scheduling/appointment/{appointment.pk}/{action}/"


@pytest.fixture
def booked_today(daytime, staff_user, doctor, department, patient, book):
    return book(patient, slot_at(doctor, department, at_today(10, 20)))


# The Today page ----------------------------------------------------------------------------------------


def test_it_lists_todays_arrivals_by_clinic_time_with_status_and_token(
    client, staff_user, doctor, department, patient, other_patient, booked_today, book
):
    later = book(other_patient, slot_at(doctor, department, at_today(11, 45)))
    tomorrow = book(patient, slot_at(doctor, department, at_today(11, 45) + dt.timedelta(days=1)))
    client.force_login(staff_user)

    body = client.get(TODAY_URL).content.decode()

    assert "Europe/London (GMT)" in body
    arrivals = body[body.index('id="desk-arrivals"') :]
    assert arrivals.index("10:20") < arrivals.index("11:45")
    assert "Lovelace, Ada" in arrivals
    assert "Hopper, Grace" in arrivals
    assert arrivals.count("Booked") == 2
    assert f"/{tomorrow.pk}/change/" not in arrivals  # only today
    assert f"/{later.pk}/check-in/" in arrivals
    assert not STAFF_UTC.search(body)


def test_it_finds_patients_by_name_mrn_phone_and_date_of_birth(client, staff_user, org):
    found = PatientFactory(
        organization=org,
        first_name="Meera",
        last_name="Iyer",
        phone="+91 98765 43210",
        date_of_birth=dt.date(1980, 5, 17),
    )
    PatientFactory(
        organization=org, first_name="Someone", last_name="Else", date_of_birth=dt.date(1981, 5, 17)
    )
    client.force_login(staff_user)

    for term in ("iye", found.mrn, "98765 43210", "1980-05-17", "17/05/1980", "17 May 1980"):
        body = client.get(TODAY_URL, {"q": term}).content.decode()
        assert "Iyer, Meera" in body, term
        assert "Else, Someone" not in body, term
    page = client.get(TODAY_URL, {"q": "iyer"}).content.decode()
    # Reachable from the keyboard: focused on load, with an access key.
    assert re.search(r'<input type="search" name="q" id="desk-q"[^>]*autofocus accesskey="s"', page)


def test_it_remembers_the_chosen_clinic_and_offers_only_the_users_clinics(
    client, org, clinic, other_clinic, other_org_clinic
):
    both = UserFactory(
        username="float", role=Role.STAFF, organization=org, is_staff=True, clinics=[clinic, other_clinic]
    )
    client.force_login(both)

    body = client.get(TODAY_URL, {"clinic": other_clinic.pk}).content.decode()
    assert "Today at Riverside North" in body
    assert "Europe/Paris (CET)" in body
    assert other_org_clinic.name not in body
    assert "Today at Riverside North" in client.get(TODAY_URL).content.decode()  # remembered
    assert client.get(TODAY_URL, {"clinic": other_org_clinic.pk}).status_code == 404


# Booking -----------------------------------------------------------------------------------------------


def test_it_books_a_slot_shown_in_clinic_time_from_the_calendar(client, org, patient):
    kolkata = ClinicFactory(organization=org, name="Kolkata OPD", code="kol", time_zone="Asia/Kolkata")
    cardio = DepartmentFactory(clinic=kolkata, name="Cardiology", code="cardio")
    priya = DoctorFactory(
        user__organization=org, user__first_name="Priya", user__last_name="Sen", departments=[cardio]
    )
    # 02:30 UTC is 08:00 in Kolkata.
    day = timezone.now().date() + dt.timedelta(days=3)
    slot = slot_at(priya, cardio, dt.datetime.combine(day, dt.time(2, 30), tzinfo=dt.UTC))
    desk = UserFactory(
        username="kol-desk", role=Role.STAFF, organization=org, is_staff=True, clinics=[kolkata]
    )
    client.force_login(desk)
    query = {"clinic": kolkata.pk, "patient": patient.pk, "department": cardio.pk, "day": day.isoformat()}

    body = client.get(BOOK_URL, query).content.decode()
    assert "Asia/Kolkata (IST)" in body
    assert re.search(rf'name="slot" value="{slot.pk}"[^>]*>08:00 Dr Priya Sen<', body)
    assert not STAFF_UTC.search(body)

    response = client.post(BOOK_URL, {**query, "slot": slot.pk})
    assert response.status_code == 302
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.slot == slot
    assert appointment.channel == "admin"


def test_it_books_the_first_available_time(client, staff_user, doctor, department, patient):
    later = slot_at(doctor, department, timezone.now() + dt.timedelta(days=2))
    first = slot_at(doctor, department, timezone.now() + dt.timedelta(days=1))
    client.force_login(staff_user)

    response = client.post(
        BOOK_URL,
        {"patient": patient.pk, "department": department.pk, "doctor": doctor.pk, "how": "first_available"},
    )

    assert response.status_code == 302
    assert Appointment.objects.get(patient=patient).slot == first
    assert later.appointments.count() == 0


def test_it_walks_a_patient_into_the_next_free_seat_today_and_checks_them_in(
    client, daytime, staff_user, doctor, department, patient
):
    slot_at(doctor, department, at_today(9, 55))  # started already: not offered
    next_free = slot_at(doctor, department, at_today(10, 15))
    slot_at(doctor, department, at_today(10, 30))
    client.force_login(staff_user)

    response = client.post(BOOK_URL, {"patient": patient.pk, "department": department.pk, "how": "walk_in"})

    appointment = Appointment.objects.get(patient=patient)
    assert appointment.slot == next_free
    assert appointment.status == AppointmentStatus.CHECKED_IN
    assert response["Location"] == action_url(appointment, "slip")
    slip = client.get(response["Location"]).content.decode()
    assert f"GEN-{appointment.token_number}" in slip
    assert "10:15 Europe/London (GMT)" in slip


def test_it_says_when_no_seat_is_left_today_for_a_walk_in(
    client, daytime, staff_user, doctor, department, patient
):
    slot_at(doctor, department, at_today(10, 0) + dt.timedelta(days=1))  # tomorrow only
    client.force_login(staff_user)

    response = client.post(BOOK_URL, {"patient": patient.pk, "department": department.pk, "how": "walk_in"})

    assert response.status_code == 400
    assert "No free seat left today" in response.content.decode()
    assert not Appointment.objects.filter(patient=patient).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"slot": "abc"}, "slot"),
        ({"how": "teleport"}, "how"),
        ({"how": "slot"}, "slot"),
    ],
)
def test_it_refuses_bad_booking_input_naming_the_field(
    client, staff_user, department, patient, slot, data, field
):
    client.force_login(staff_user)

    response = client.post(BOOK_URL, {"patient": patient.pk, "department": department.pk, **data})

    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()
    assert not Appointment.objects.exists()


def test_it_refuses_a_slot_or_department_of_another_clinic(
    client, staff_user, department, patient, other_clinic_department, other_clinic_doctor
):
    theirs = slot_at(other_clinic_doctor, other_clinic_department, timezone.now() + dt.timedelta(days=1))
    client.force_login(staff_user)

    by_slot = client.post(BOOK_URL, {"patient": patient.pk, "department": department.pk, "slot": theirs.pk})
    by_department = client.post(
        BOOK_URL, {"patient": patient.pk, "department": other_clinic_department.pk, "slot": theirs.pk}
    )

    assert by_slot.status_code == 400
    assert 'data-field="slot"' in by_slot.content.decode()
    assert by_department.status_code == 400
    assert 'data-field="department"' in by_department.content.decode()
    assert not Appointment.objects.exists()


# Check-in, slip, cancel, reschedule --------------------------------------------------------------------


def test_it_checks_in_and_prints_a_slip_with_the_token(client, staff_user, booked_today):
    client.force_login(staff_user)

    response = client.post(action_url(booked_today, "check-in"))

    booked_today.refresh_from_db()
    assert booked_today.status == AppointmentStatus.CHECKED_IN
    assert response["Location"] == action_url(booked_today, "slip")
    slip = client.get(response["Location"]).content.decode()
    assert "GEN-1" in slip
    assert "Ada Lovelace" in slip
    assert booked_today.doctor.display_name in slip
    assert "10:20 Europe/London (GMT)" in slip
    assert "css/desk.css" in slip  # the print stylesheet


def test_it_cancels_with_a_reason_and_refuses_without_one(client, staff_user, booked_today):
    client.force_login(staff_user)

    empty = client.post(action_url(booked_today, "cancel"), {"reason": "   "})
    booked_today.refresh_from_db()
    assert empty.status_code == 400
    assert "Reason:" in empty.content.decode()
    assert booked_today.status == AppointmentStatus.BOOKED

    done = client.post(action_url(booked_today, "cancel"), {"reason": "Patient phoned: unwell"})
    booked_today.refresh_from_db()
    assert done.status_code == 302
    assert booked_today.status == AppointmentStatus.CANCELLED
    assert booked_today.cancellation_reason == "Patient phoned: unwell"
    assert AuditEvent.objects.filter(action="appointment.cancelled", object_id=str(booked_today.pk)).exists()


def test_it_reschedules_to_an_open_slot_and_refuses_a_bad_one(
    client, staff_user, doctor, department, booked_today, other_clinic_department, other_clinic_doctor
):
    new_slot = slot_at(doctor, department, timezone.now() + dt.timedelta(days=2))
    theirs = slot_at(other_clinic_doctor, other_clinic_department, timezone.now() + dt.timedelta(days=2))
    client.force_login(staff_user)

    page = client.get(
        action_url(booked_today, "reschedule"), {"day": new_slot.date.isoformat()}
    ).content.decode()
    assert f'value="{new_slot.pk}"' in page
    for bad in (theirs.pk, "x"):
        refused = client.post(action_url(booked_today, "reschedule"), {"slot": bad})
        assert refused.status_code == 400
        assert 'data-field="slot"' in refused.content.decode()
    booked_today.refresh_from_db()
    assert booked_today.slot != new_slot

    moved = client.post(action_url(booked_today, "reschedule"), {"slot": new_slot.pk})
    booked_today.refresh_from_db()
    assert moved.status_code == 302
    assert booked_today.slot == new_slot
    assert booked_today.reschedule_count == 1


def test_the_appointment_page_has_the_desk_actions_as_buttons(client, staff_user, booked_today):
    client.force_login(staff_user)

    body = client.get(f"/admin/scheduling/appointment/{booked_today.pk}/change/").content.decode()

    assert f'action="{action_url(booked_today, "check-in")}"' in body
    assert f'href="{action_url(booked_today, "reschedule")}"' in body
    assert f'href="{action_url(booked_today, "cancel")}"' in body
    assert "Europe/London (GMT)" in body
    assert not STAFF_UTC.search(body)


# Who may use the desk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["check-in", "slip", "cancel", "reschedule"])
def test_it_hides_another_clinics_appointments(
    client, other_clinic_staff, other_org_user, booked_today, action
):
    for outsider in (other_clinic_staff, other_org_user):
        client.force_login(outsider)
        response = client.post(
            action_url(booked_today, action), {"reason": "x", "slot": booked_today.slot_id}
        )
        assert response.status_code == 404, (outsider, action)
    booked_today.refresh_from_db()
    assert booked_today.status == AppointmentStatus.BOOKED


def test_it_refuses_patients_and_doctors(client, patient, doctor, booked_today, department):
    doctor.user.is_staff = True  # even if set by mistake
    doctor.user.save()
    for user in (patient.user, doctor.user):
        client.force_login(user)
        for url in (TODAY_URL, BOOK_URL + f"?patient={patient.pk}&department={department.pk}"):
            assert client.get(url).status_code in (302, 403), (user, url)
        assert client.post(action_url(booked_today, "check-in")).status_code in (302, 403)
        assert client.post(action_url(booked_today, "cancel"), {"reason": "x"}).status_code in (302, 403)
    booked_today.refresh_from_db()
    assert booked_today.status == AppointmentStatus.BOOKED


def test_it_does_not_book_another_organizations_patient(
    client, staff_user, department, slot, other_org_patient
):
    client.force_login(staff_user)

    response = client.post(
        BOOK_URL, {"patient": other_org_patient.pk, "department": department.pk, "slot": slot.pk}
    )

    assert response.status_code == 404
    assert not Appointment.objects.exists()


# Clinic time everywhere staff look ---------------------------------------------------------------------


@pytest.fixture
def kolkata_slot(org):
    kolkata = ClinicFactory(organization=org, name="Kolkata OPD", code="kol", time_zone="Asia/Kolkata")
    cardio = DepartmentFactory(clinic=kolkata, name="Cardiology", code="cardio")
    priya = DoctorFactory(
        user__organization=org, user__first_name="Priya", user__last_name="Sen", departments=[cardio]
    )
    return slot_at(priya, cardio, dt.datetime(2030, 12, 6, 2, 30, tzinfo=dt.UTC))


def test_the_slot_picker_shows_clinic_time_and_finds_clinic_local_dates(client, admin_user, kolkata_slot):
    client.force_login(admin_user)
    base = {"app_label": "scheduling", "model_name": "appointment", "field_name": "slot"}

    for term in ("06 Dec 2030", "2030-12-06", "6/12/2030", "6 december 2030"):
        results = client.get("/admin/autocomplete/", {**base, "term": term}).json()["results"]
        assert [r["text"] for r in results] == ["Dr Priya Sen Fri 06 Dec 2030, 08:00 Asia/Kolkata (IST)"], (
            term
        )
    assert client.get("/admin/autocomplete/", {**base, "term": "07 Dec 2030"}).json()["results"] == []


def test_admin_pages_of_slots_appointments_and_consultations_say_no_utc(
    client, superuser, staff_user, kolkata_slot, booked_today, doctor, department, other_patient
):
    from consultations.models import CareNote
    from consultations.services import care_note_create
    from tests.consultations.factories import completed_consultation

    consultation = completed_consultation(doctor=doctor, department=department, patient=other_patient)
    care_note_create(
        actor=staff_user,
        patient=other_patient,
        clinic=department.clinic,
        category="observation",
        text="Settled",
    )
    note = CareNote.objects.get()
    client.force_login(superuser)
    pages = [
        f"/admin/consultations/consultation/{consultation.pk}/change/",
        f"/admin/consultations/carenote/{note.pk}/change/",
        "/admin/scheduling/slot/",
        f"/admin/scheduling/slot/{kolkata_slot.pk}/change/",
        "/admin/scheduling/slot/?q=06+Dec+2030",
        "/admin/scheduling/appointment/?when=all",
        f"/admin/scheduling/appointment/{booked_today.pk}/change/",
        "/admin/scheduling/appointment/add/",
        "/admin/consultations/consultation/",
        "/admin/consultations/carenote/",
        TODAY_URL,
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "UTC" not in response.content.decode(), url
    body = client.get("/admin/scheduling/slot/?when=all").content.decode()
    assert "Fri 06 Dec 2030, 08:00 Asia/Kolkata (IST)" in body


def test_the_appointment_list_is_browsed_and_searched_by_the_clinics_day(client, staff_user, booked_today):
    client.force_login(staff_user)
    day = booked_today.slot.date

    hierarchy = client.get(
        "/admin/scheduling/appointment/",
        {"slot__date__year": day.year, "slot__date__month": day.month, "slot__date__day": day.day},
    ).content.decode()
    searched = client.get("/admin/scheduling/appointment/", {"q": day.strftime("%d %b %Y"), "when": "all"})

    assert f"/{booked_today.pk}/change/" in hierarchy
    assert f"/{booked_today.pk}/change/" in searched.content.decode()


def test_the_parser_reads_the_supported_date_formats():
    from opd.core.clinic_time import parse_local_day

    today = dt.date(2026, 12, 6)
    assert parse_local_day("2026-12-06", today) == dt.date(2026, 12, 6)
    assert parse_local_day("6/12/2026", today) == dt.date(2026, 12, 6)
    assert parse_local_day("06.12.2026", today) == dt.date(2026, 12, 6)
    assert parse_local_day("06 Dec", today) == dt.date(2026, 12, 6)
    assert parse_local_day("6 jan", today) == dt.date(2027, 1, 6)  # the nearest 6 January
    assert parse_local_day("20 Nov", today) == dt.date(2026, 11, 20)
    assert parse_local_day("31/02/2026", today) is None
    assert parse_local_day("ada", today) is None
    assert parse_local_day("12345", today) is None


def test_titles_name_the_clinic_zone(kolkata_slot, patient, staff_user):
    zone = zoneinfo.ZoneInfo("Asia/Kolkata")
    assert str(kolkata_slot) == "Dr Priya Sen Fri 06 Dec 2030, 08:00 Asia/Kolkata (IST)"
    assert kolkata_slot.start.astimezone(zone).hour == 8


# The patient's page -----------------------------------------------------------------------------------


def test_the_patient_page_shows_appointments_preferences_allergies_and_balance(
    client, staff_user, admin_user, patient, doctor, department, booked_today, book
):
    from patients.models import AllergyStatus
    from patients.services import allergy_record

    next_slot = slot_at(doctor, department, timezone.now() + dt.timedelta(days=2))
    later = book(patient, next_slot)
    allergy_record(
        actor=staff_user,
        patient=patient,
        substance="Penicillin",
        category="drug",
        severity="severe",
        reaction="Rash",
        status=AllergyStatus.ACTIVE,
    )
    client.force_login(staff_user)

    body = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()

    upcoming = body[body.index('id="patient-upcoming"') : body.index("<h3>Past</h3>")]
    assert upcoming.index(f"/{booked_today.pk}/change/") < upcoming.index(f"/{later.pk}/change/")
    assert "10:20 Europe/London (GMT)" in upcoming
    assert "Not set: every channel with an address" in body
    assert "Penicillin" in body
    assert "Nothing owed." in body
    assert not STAFF_UTC.search(body)

    client.force_login(admin_user)
    as_admin = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()
    assert "Penicillin" not in as_admin  # administrators do not read clinical data


def test_the_waiting_room_page_sends_reception_to_the_desk_for_check_in(client, staff_user, clinic):
    client.force_login(staff_user)

    body = client.get(reverse("queue:waiting-rooms")).content.decode()

    assert f'href="{TODAY_URL}?clinic={clinic.pk}"' in body
    assert "status__exact=booked" not in body
