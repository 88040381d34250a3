"""The appointment as an RFC 5545 calendar file, from the portal and from the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from portal.ics import appointment_ics, escape_text, fold
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

API = "/api/v1/appointments/{}/calendar.ics"


@pytest.fixture
def booked(patient, open_slot, clinic):
    clinic.address = "1 Riverside Walk\nLondon; SE1 9XX, UK"
    clinic.phone = "+44 20 7946 0000"
    clinic.save()
    return appointment_book(
        actor=None, patient=patient, slot=open_slot, reason="Cough, fever; and a long " * 6
    )


def parse(body: bytes) -> dict:
    """Check the framing, unfold, and return the VEVENT's properties (name -> value)."""
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", ""), "every line ends with CRLF"
    physical = text[:-2].split("\r\n")
    assert all(len(line.encode()) <= 75 for line in physical), "folded at 75 octets"
    logical: list[str] = []
    for line in physical:
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    assert logical[0] == "BEGIN:VCALENDAR"
    assert logical[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in logical
    assert any(line.startswith("PRODID:") for line in logical)
    assert logical.count("BEGIN:VEVENT") == logical.count("END:VEVENT") == 1
    event = logical[logical.index("BEGIN:VEVENT") + 1 : logical.index("END:VEVENT")]
    return dict(line.split(":", 1) for line in event)


def utc(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def test_it_downloads_a_valid_calendar_file_from_the_portal(as_patient, booked, open_slot):
    response = as_patient.get(reverse("portal:appointment-ics", args=[booked.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="appointment-{booked.pk}.ics"'
    event = parse(response.content)
    assert event["UID"] == f"appointment-{booked.pk}@testserver"
    utc(event["DTSTAMP"])
    assert utc(event["DTSTART"]) == open_slot.start
    assert utc(event["DTEND"]) == open_slot.end
    assert event["STATUS"] == "CONFIRMED"
    assert event["SUMMARY"] == "General medicine appointment with " + booked.doctor.display_name
    assert event["LOCATION"] == "Riverside Central\\, 1 Riverside Walk\\, London\\; SE1 9XX\\, UK"
    assert "Reason: Cough\\, fever\\; and a long" in event["DESCRIPTION"]
    assert "\\n" in event["DESCRIPTION"]
    assert "Europe/London" in event["DESCRIPTION"]
    assert event["URL"] == "http://testserver" + reverse("portal:appointment", args=[booked.pk])


def test_it_marks_a_moved_appointment_with_a_higher_sequence(as_patient, booked, later_slot):
    appointment_reschedule(actor=None, appointment=booked, slot=later_slot)

    event = parse(as_patient.get(reverse("portal:appointment-ics", args=[booked.pk])).content)

    assert event["SEQUENCE"] == "1"
    assert utc(event["DTSTART"]) == later_slot.start


def test_it_marks_a_cancelled_appointment_cancelled(as_patient, booked):
    appointment_cancel(actor=None, appointment=booked)

    event = parse(as_patient.get(reverse("portal:appointment-ics", args=[booked.pk])).content)

    assert event["STATUS"] == "CANCELLED"


def test_it_folds_long_lines_without_splitting_a_character():
    line = "DESCRIPTION:" + "é" * 100

    folded = fold(line)

    pieces = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in pieces)
    assert all(p.startswith(" ") for p in pieces[1:])
    assert "".join([pieces[0], *(p[1:] for p in pieces[1:])]) == line


def test_it_escapes_text_values():
    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"


def test_it_stamps_the_file_with_the_given_time(booked):
    stamp = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    body = appointment_ics(booked, uid_domain="clinic.example", now=stamp)

    assert "DTSTAMP:20300102T030405Z\r\n" in body


class TestTheApi:
    def test_it_serves_the_file_to_the_patient_with_a_token(self, api_as, patient, booked, open_slot):
        response = api_as(patient.user).get(API.format(booked.pk), HTTP_ACCEPT="text/calendar")

        assert response.status_code == 200
        assert response["Content-Type"] == "text/calendar; charset=utf-8"
        assert utc(parse(response.content)["DTSTART"]) == open_slot.start

    def test_it_serves_the_file_with_a_session(self, as_patient, booked):
        assert as_patient.get(API.format(booked.pk)).status_code == 200

    def test_it_answers_404_for_another_patients_appointment(self, api_as, other_patient, booked):
        response = api_as(other_patient.user).get(API.format(booked.pk))

        assert_error(response, 404, "not_found")

    def test_it_answers_401_without_credentials(self, api, booked):
        response = api.get(API.format(booked.pk))

        assert_error(response, 401)

    def test_it_lets_clinic_staff_download_their_clinics_appointments(self, api_as, staff_user, booked):
        assert api_as(staff_user).get(API.format(booked.pk)).status_code == 200

    def test_it_is_in_the_openapi_schema(self, client):
        schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

        assert "/api/v1/appointments/{id}/calendar.ics" in schema["paths"]
