"""Each role lands on its own pages after logging in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import Role
from scheduling.services import appointment_book
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

AFTER = "/portal/after-login/"


def test_it_is_named_portal_after_login():
    assert reverse("portal:after-login") == AFTER


def test_it_sends_a_patient_without_appointments_to_booking(as_patient):
    assert as_patient.get(AFTER).url == reverse("portal:find")


def test_it_sends_a_patient_with_an_upcoming_appointment_to_their_appointments(
    as_patient, patient, open_slot
):
    appointment_book(actor=None, patient=patient, slot=open_slot)

    assert as_patient.get(AFTER).url == reverse("portal:appointments")


def test_it_sends_staff_and_superusers_to_the_admin(as_user, staff_user):
    root = UserFactory(role=Role.ADMIN, organization=None, is_staff=True, is_superuser=True)
    for user in (staff_user, root):
        assert as_user(user).get(AFTER).url == reverse("admin:index")


def test_it_sends_an_administrator_to_analytics(as_user, admin_user):
    assert as_user(admin_user).get(AFTER).url == reverse("analytics:dashboard")


def test_it_sends_a_doctor_to_the_queue_dashboard_or_home(as_user, doctor):
    from django.urls import NoReverseMatch

    try:
        expected = reverse("queue:dashboard")
    except NoReverseMatch:
        expected = reverse("home")

    assert as_user(doctor.user).get(AFTER).url == expected


def test_it_asks_anonymous_visitors_to_log_in(client):
    assert client.get(AFTER).url.startswith(reverse("login"))


def test_the_login_form_lands_a_patient_in_the_portal_through_next(client, patient):
    response = client.post(
        reverse("login"), {"username": "pat", "password": "pass-word-123", "next": AFTER}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("portal:find")


@pytest.mark.parametrize(
    ("who", "lands_on"),
    [("patient", "portal:find"), ("staff_user", "admin:index"), ("admin_user", "analytics:dashboard")],
)
def test_with_login_redirect_url_set_each_role_lands_on_its_pages(client, settings, request, who, lands_on):
    settings.LOGIN_REDIRECT_URL = "portal:after-login"  # the setting this page asks for
    user = request.getfixturevalue(who)
    user = getattr(user, "user", user)

    response = client.post(
        reverse("login"), {"username": user.username, "password": "pass-word-123"}, follow=True
    )

    assert response.redirect_chain[0][0] == AFTER
    assert response.redirect_chain[-1][0] == reverse(lands_on)


def test_the_login_form_keeps_an_explicit_next(client, patient):
    response = client.get(reverse("login") + "?next=/portal/record/")

    assert 'name="next" value="/portal/record/"' in response.content.decode()
