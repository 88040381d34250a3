"""SMS kept to one segment where possible: the counter, and the templates rendered with realistic data."""

from __future__ import annotations

import pytest

from notifications.models import Channel, Kind
from notifications.rendering import appointment_context, lead_text, render_message
from notifications.sms import sms_length, sms_segments
from tests.conftest import future_slot
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("é" * 160, "GSM-7", 160, 1),  # é is in the default alphabet
        ("ê" + "a" * 69, "UCS-2", 70, 1),  # ê is not: the whole text goes as UCS-2
        ("ê" + "a" * 70, "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 code units
        ("नमस्ते" * 12, "UCS-2", 72, 2),
    ],
)
def test_it_counts_segments_like_a_carrier(text, encoding, units, segments):
    assert sms_length(text) == (sms_length(text).__class__(encoding, units, segments))
    assert sms_segments(text) == segments


@pytest.fixture
def realistic(settings, org, department, doctor):
    """A real-looking deployment: a long-ish clinic name, a six-digit appointment id range, a phone."""
    settings.OPD_SITE_URL = "https://opd.riverside-health.org"
    clinic = department.clinic
    clinic.name, clinic.phone, clinic.time_zone = "Riverside Central", "+44 20 7946 0000", "Europe/London"
    clinic.save()
    doctor.user.first_name, doctor.user.last_name = "Priya", "Sengupta"
    doctor.user.save()
    return clinic


@pytest.mark.parametrize(
    "kind", [Kind.BOOKING_CONFIRMATION, Kind.REMINDER, Kind.RESCHEDULE, Kind.CANCELLATION]
)
def test_each_appointment_sms_fits_one_segment_with_realistic_data(
    realistic, book, org, doctor, department, kind
):
    patient = PatientFactory(organization=org, first_name="Ada", last_name="Lovelace")
    appointment = book(patient, future_slot(doctor, department, days=3))
    # The ids a busy clinic reaches after a few years: the link carries them (base 62).
    appointment.pk, appointment.patient.pk = 987_654, 123_456  # not saved: only rendered
    appointment.patient = appointment.patient
    appointment.clinic = realistic
    context = appointment_context(appointment, lead_text=lead_text(120), previous_when="", reason="")

    body = render_message(kind=kind, channel=Channel.SMS, context=context).body

    assert sms_segments(body) == 1, (len(body), body)
    if kind != Kind.CANCELLATION:
        assert "https://opd.riverside-health.org/m/" in body


def test_a_name_outside_the_gsm_alphabet_is_counted_as_ucs2(realistic, book, org, doctor, department):
    patient = PatientFactory(organization=org, first_name="Zoë", last_name="Ōtsuka")
    appointment = book(patient, future_slot(doctor, department, days=3))
    realistic.name = "Klinik Łódź"
    appointment.clinic = realistic
    body = render_message(
        kind=Kind.CANCELLATION, channel=Channel.SMS, context=appointment_context(appointment)
    ).body

    assert sms_length(body).encoding == "UCS-2"
    assert sms_segments(body) == -(-len(body) // 67) if len(body) > 70 else 1


def test_the_short_time_names_the_zone(realistic, book, org, doctor, department):
    patient = PatientFactory(organization=org)
    appointment = book(patient, future_slot(doctor, department, days=3))
    realistic.time_zone = "Asia/Kolkata"
    appointment.clinic = realistic

    context = appointment_context(appointment)

    assert context["when_short"].endswith("IST")
    local = appointment.start.astimezone(realistic.tz)
    assert context["when_short"] == f"{local:%a %d %b %H:%M} IST"
