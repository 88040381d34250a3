"""Who may open the portal, and that a patient can never reach another patient's appointments."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from opd.core.models import Role
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book
from tests.factories import UserFactory

from .conftest import make_slot

pytestmark = pytest.mark.django_db

PAGES = ["portal:index", "portal:find", "portal:appointments", "portal:record", "portal:profile"]


def appointment_pages(appointment) -> list[str]:
    return [
        reverse(name, args=[appointment.pk])
        for name in (
            "portal:appointment",
            "portal:confirmation",
            "portal:appointment-ics",
            "portal:cancel",
            "portal:reschedule",
        )
    ]


@pytest.fixture
def others_appointment(other_patient, open_slot):
    return appointment_book(actor=None, patient=other_patient, slot=open_slot, reason="Theirs")


@pytest.mark.parametrize("name", PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


def test_it_sends_anonymous_visitors_to_log_in_before_booking(client, open_slot):
    response = client.get(reverse("portal:book", args=[open_slot.pk]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
def test_it_sends_staff_to_the_admin_and_admins_to_analytics(as_user, staff_user, admin_user, name):
    for user, lands_on in ((staff_user, "admin:index"), (admin_user, "analytics:dashboard")):
        client = as_user(user)
        response = client.get(reverse(name), follow=True)

        assert response.redirect_chain[-1][0] == reverse(lands_on)


def test_it_sends_doctors_away_from_the_portal(as_user, doctor):
    response = as_user(doctor.user).get(reverse("portal:find"))

    assert response.status_code == 302
    assert response.url == reverse("portal:after-login")
    assert as_user(doctor.user).get(response.url).status_code == 302


def test_it_refuses_a_staff_member_who_posts_a_booking(as_user, staff_user, open_slot):
    response = as_user(staff_user).post(
        reverse("portal:book", args=[open_slot.pk]),
        {"reason": "x", "token": "6f1c1c8e-2a7e-4d8e-9a55-0d9c0f4f9e11"},
    )

    assert response.status_code == 302
    assert not Appointment.objects.exists()


def test_it_says_so_when_a_patient_account_has_no_patient_record(as_user, org):
    lonely = UserFactory(role=Role.PATIENT, organization=org)

    response = as_user(lonely).get(reverse("portal:find"))

    assert response.status_code == 403
    assert "no patient record" in response.content.decode()


def test_it_answers_404_for_another_patients_appointment_on_every_page(as_patient, others_appointment):
    for url in appointment_pages(others_appointment):
        assert as_patient.get(url).status_code == 404, url


def test_it_refuses_to_cancel_or_move_another_patients_appointment(
    as_patient, others_appointment, doctor, department
):
    other_slot = make_slot(doctor, department, days=4, hour=9)
    token = "6f1c1c8e-2a7e-4d8e-9a55-0d9c0f4f9e11"

    cancel = as_patient.post(reverse("portal:cancel", args=[others_appointment.pk]), {"token": token})
    move = as_patient.post(
        reverse("portal:reschedule", args=[others_appointment.pk]), {"token": token, "slot": other_slot.pk}
    )

    assert (cancel.status_code, move.status_code) == (404, 404)
    others_appointment.refresh_from_db()
    assert others_appointment.status == AppointmentStatus.BOOKED
    assert others_appointment.slot_id != other_slot.pk


def test_it_answers_404_for_another_organizations_slot(as_patient, other_org_doctor, other_org_department):
    foreign = make_slot(other_org_doctor, other_org_department)

    assert as_patient.get(reverse("portal:book", args=[foreign.pk])).status_code == 404
    assert (
        as_patient.get(reverse("portal:book-first-available", args=[other_org_department.pk])).status_code
        == 404
    )


def test_it_requires_the_csrf_token_on_writes(patient, open_slot):
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient.user)

    response = client.post(
        reverse("portal:book", args=[open_slot.pk]),
        {"reason": "Cough", "token": "6f1c1c8e-2a7e-4d8e-9a55-0d9c0f4f9e11"},
    )

    assert response.status_code == 403
    assert not Appointment.objects.exists()


def test_it_puts_a_csrf_token_in_every_portal_form(as_patient, open_slot):
    for url in (reverse("portal:book", args=[open_slot.pk]), reverse("portal:profile")):
        assert 'name="csrfmiddlewaretoken"' in as_patient.get(url).content.decode()


@pytest.mark.parametrize("name", ["portal:appointment-ics", "portal:appointment"])
def test_it_refuses_writes_on_read_only_pages(as_patient, patient, open_slot, name):
    appointment = appointment_book(actor=None, patient=patient, slot=open_slot)

    assert as_patient.post(reverse(name, args=[appointment.pk])).status_code == 405


def test_it_refuses_methods_a_page_does_not_take(as_patient):
    assert as_patient.delete(reverse("portal:find")).status_code == 405
