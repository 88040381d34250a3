"""The signed manage-booking link in confirmations and reminders: one appointment, no sign-in."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from notifications.links import SALT, _ShortTimestampSigner, manage_token, manage_url
from notifications.models import Kind, Notification
from opd.core.models import AuditEvent
from scheduling.models import AppointmentStatus
from tests.conftest import future_slot
from tests.factories import PatientFactory, SlotFactory

pytestmark = pytest.mark.django_db(transaction=False)

SITE = "https://opd.clinic.example"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.OPD_SITE_URL = SITE


@pytest.fixture
def appointment(book, patient, doctor, department):
    return book(patient, future_slot(doctor, department, days=3))


def path_of(url: str) -> str:
    assert url.startswith(SITE + "/m/")
    return url.removeprefix(SITE)


def test_it_opens_the_appointment_from_the_link_without_signing_in(client, appointment, doctor):
    token = manage_token(appointment)
    page = client.get(reverse("manage:page", args=[token]))

    assert page.status_code == 200
    text = page.content.decode()
    assert doctor.display_name in text
    assert "Ada Lovelace" in text
    assert reverse("manage:cancel", args=[token]) in text
    assert page["Cache-Control"] == "private, no-store"
    calendar = client.get(reverse("manage:ics", args=[token]))
    assert calendar.status_code == 200
    assert calendar["Content-Type"].startswith("text/calendar")
    assert f"UID:appointment-{appointment.pk}@" in calendar.content.decode()


def test_it_refuses_a_tampered_link(client, appointment):
    token = manage_token(appointment)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    page = client.get(reverse("manage:page", args=[tampered]))

    assert page.status_code == 404
    assert "This link is not valid" in page.content.decode()
    assert client.post(reverse("manage:cancel", args=[tampered]), {"reason": "x"}).status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_it_refuses_a_link_pointed_at_another_appointment(
    client, book, appointment, other_patient, doctor, department
):
    theirs = book(other_patient, future_slot(doctor, department, days=4))
    # This link's signature with the other appointment's id put in: the signature no longer matches.
    value, _, rest = manage_token(appointment).partition(":")
    swapped = f"{signing.b62_encode(theirs.pk)}.{value.split('.')[1]}:{rest}"
    # A genuine signature over (their appointment, my patient id): the pair does not exist.
    mixed = _ShortTimestampSigner(salt=SALT).sign(
        f"{signing.b62_encode(theirs.pk)}.{signing.b62_encode(appointment.patient_id)}"
    )
    # A token for another purpose (another salt) over the right value.
    other_salt = _ShortTimestampSigner(salt="another-purpose").sign(value)
    # Django's full-length signature over the right value: not the form this link uses.
    full_length = signing.TimestampSigner(salt=SALT).sign(value)

    for token in (swapped, mixed, other_salt, full_length):
        assert client.get(reverse("manage:page", args=[token])).status_code == 404
        assert client.post(reverse("manage:cancel", args=[token]), {"reason": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == AppointmentStatus.BOOKED


def test_it_answers_410_once_the_appointment_is_over(client, appointment):
    url = path_of(manage_url(appointment))

    with time_machine.travel(appointment.end + dt.timedelta(minutes=1)):
        page = client.get(url)

    assert page.status_code == 410
    assert "This link has expired" in page.content.decode()


def test_it_answers_410_when_the_link_is_older_than_the_maximum_age(client, appointment, settings):
    settings.OPD_MANAGE_LINK_MAX_AGE_DAYS = 1
    url = path_of(manage_url(appointment))

    with time_machine.travel(timezone.now() + dt.timedelta(days=1, hours=1)):
        answer = client.post(url + "cancel/", {"reason": "late"})

    assert answer.status_code == 410
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_it_cancels_through_the_link_as_the_patient_and_audits_the_door(client, appointment, patient):
    token = manage_token(appointment)

    form = client.get(reverse("manage:cancel", args=[token]))
    answer = client.post(reverse("manage:cancel", args=[token]), {"reason": "Feeling better", **tokens(form)})

    assert answer.status_code == 302
    assert answer["Location"] == reverse("manage:page", args=[token])
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by == patient.user
    event = AuditEvent.objects.get(action="appointment.cancelled", object_id=str(appointment.pk))
    assert event.actor == patient.user
    assert event.data["channel"] == "manage_link"


def test_after_a_cancel_the_link_shows_it_cancelled_and_refuses_a_second(client, appointment):
    token = manage_token(appointment)
    client.post(
        reverse("manage:cancel", args=[token]),
        {"reason": "", **tokens(client.get(reverse("manage:cancel", args=[token])))},
    )

    page = client.get(reverse("manage:page", args=[token]))
    again = client.post(reverse("manage:cancel", args=[token]), {"reason": "", **form_token()})

    assert page.status_code == 200
    assert "Cancelled" in page.content.decode()
    assert reverse("manage:cancel", args=[token]) not in page.content.decode()
    assert again.status_code == 409


def test_a_patient_without_an_account_cancels_but_not_past_the_cut_off(client, book, org, doctor, department):
    walk_in = PatientFactory(organization=org, first_name="Mary", last_name="Seacole")
    in_an_hour = timezone.now().replace(microsecond=0) + dt.timedelta(hours=1)
    soon = book(walk_in, SlotFactory(doctor=doctor, department=department, start=in_an_hour))  # cut-off: 2 h
    later = book(walk_in, future_slot(doctor, department, days=2))

    refused = client.post(reverse("manage:cancel", args=[manage_token(soon)]), {"reason": "", **form_token()})
    done = client.post(reverse("manage:cancel", args=[manage_token(later)]), {"reason": "", **form_token()})

    assert (refused.status_code, done.status_code) == (409, 302)
    assert "Online changes close" in refused.content.decode()
    soon.refresh_from_db()
    later.refresh_from_db()
    assert (soon.status, later.status) == (AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED)
    assert later.cancelled_by is None
    event = AuditEvent.objects.get(action="appointment.cancelled", object_id=str(later.pk))
    assert event.data["channel"] == "manage_link"


def test_it_reschedules_through_the_link_within_the_department(client, appointment, doctor, department):
    token = manage_token(appointment)
    target = future_slot(doctor, department, days=5)

    answer = client.post(reverse("manage:reschedule", args=[token]), {"slot": target.pk, **form_token()})

    assert answer.status_code == 302
    appointment.refresh_from_db()
    assert appointment.slot_id == target.pk
    assert client.get(reverse("manage:page", args=[token])).status_code == 200  # the link still works


def test_it_will_not_move_an_appointment_to_another_organizations_slot(
    client, appointment, other_org_doctor, other_org_department
):
    theirs = future_slot(other_org_doctor, other_org_department, days=5)

    answer = client.post(
        reverse("manage:reschedule", args=[manage_token(appointment)]), {"slot": theirs.pk, **form_token()}
    )

    assert answer.status_code == 400
    appointment.refresh_from_db()
    assert appointment.slot_id != theirs.pk


def test_the_confirmation_carries_the_absolute_manage_link_and_the_right_words(client, appointment):
    email = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION, channel="email")
    sms = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION, channel="sms")
    link = manage_url(appointment)

    assert link in email.body
    assert f'href="{link}"' in email.body_html
    assert link in sms.body
    assert f"{SITE}/portal/profile/" in email.body  # the patient has an account: preferences are theirs
    for text in (email.body, email.body_html):
        assert "at reception" not in text
        assert "rearrange" not in text
    (sent,) = [m for m in mail.outbox if "Appointment booked" in m.subject]
    found = re.search(r"https://\S+/m/\S+/", sent.body)
    assert found is not None
    assert client.get(path_of(found.group(0))).status_code == 200


def test_reminders_and_moves_carry_the_link_too(
    book, patient, doctor, department, django_capture_on_commit_callbacks
):
    from scheduling.services import appointment_reschedule

    appointment = book(patient, future_slot(doctor, department, days=3))
    with django_capture_on_commit_callbacks(execute=True):
        appointment_reschedule(
            actor=None, appointment=appointment, slot=future_slot(doctor, department, days=4)
        )

    link = manage_url(appointment)
    for kind in (Kind.REMINDER, Kind.RESCHEDULE):
        rows = Notification.objects.filter(appointment=appointment, kind=kind, channel__in=["email", "sms"])
        assert rows
        for row in rows:
            assert (
                link.rsplit(":", 2)[0] in row.body
            )  # same appointment and patient; the timestamp may differ


def test_a_patient_without_an_account_is_told_to_ask_the_clinic(book, org, doctor, department):
    walk_in = PatientFactory(organization=org, first_name="Mary", last_name="Seacole")
    appointment = book(walk_in, future_slot(doctor, department, days=3))

    email = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION, channel="email")

    assert "ask the clinic" in email.body
    assert "/portal/profile/" not in email.body


def tokens(page) -> dict:
    found = re.search(r'name="token" value="([^"]+)"', page.content.decode())
    assert found is not None
    return {"token": found.group(1)}


def form_token() -> dict:
    import uuid

    return {"token": str(uuid.uuid4())}


def test_writes_through_the_link_are_rate_limited_like_the_portals(
    client, book, appointment, settings, doctor, department, patient
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "booking_ip": "1/hour",
        },
    }
    other = book(patient, future_slot(doctor, department, days=5))
    client.post(reverse("manage:cancel", args=[manage_token(appointment)]), {"reason": "", **form_token()})

    refused = client.post(
        reverse("manage:cancel", args=[manage_token(other)]), {"reason": "", **form_token()}
    )

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert (
        client.get(reverse("manage:page", args=[manage_token(other)])).status_code == 200
    )  # reading is not limited
    other.refresh_from_db()
    assert other.status == AppointmentStatus.BOOKED
