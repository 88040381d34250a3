"""The password rule holds at every door: at least 12 characters, not common, not only digits, not like
the person's own names; the services refuse it whoever calls them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.errors import ValidationFailed
from opd.core.models import Membership, Role, User
from opd.core.services import user_create, user_set_password

pytestmark = pytest.mark.django_db

WEAK = [
    ("short-pw-1", "at least 12 characters"),  # 10 characters
    ("password1234", "too common"),
    ("481516234200", "entirely numeric"),
    ("nurse-joy-smith", "too similar"),  # the username is nurse-joy-smith
]


@pytest.mark.parametrize(("password", "says"), WEAK)
def test_the_user_service_refuses_a_weak_password(org, password, says):
    with pytest.raises(ValidationFailed) as caught:
        user_create(
            actor=None, username="nurse-joy-smith", password=password, role=Role.STAFF, organization=org
        )

    assert says in " ".join(caught.value.fields["password"])
    assert not User.objects.filter(username="nurse-joy-smith").exists()


def test_the_set_password_service_refuses_a_weak_password(admin_user, staff_user):
    with pytest.raises(ValidationFailed) as caught:
        user_set_password(actor=admin_user, user=staff_user, password="short-pw-1")

    assert "at least 12 characters" in caught.value.fields["password"][0]
    staff_user.refresh_from_db()
    assert staff_user.check_password("pass-word-123")


def test_the_admin_add_user_form_refuses_a_short_password(client, admin_user, clinic):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:core_user_add"),
        {
            "username": "nurse-joy",
            "usable_password": "true",
            "password1": "short-pw-1",
            "password2": "short-pw-1",
            "role": Role.STAFF,
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-clinic": clinic.pk,
        },
    )

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    assert not User.objects.filter(username="nurse-joy").exists()
    assert not Membership.objects.filter(user__username="nurse-joy").exists()


def test_the_admins_password_page_refuses_a_short_password(client, admin_user, staff_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[staff_user.pk]),
        {"password1": "short-pw-1", "password2": "short-pw-1"},
    )

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    staff_user.refresh_from_db()
    assert staff_user.check_password("pass-word-123")


def test_portal_sign_up_refuses_a_short_password_beside_the_field(client, clinic):
    response = client.post(
        reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
        {
            "first_name": "Mary",
            "last_name": "Seacole",
            "date_of_birth": "1985-11-23",
            "email": "mary@example.org",
            "password1": "crimea-1855",
            "password2": "crimea-1855",
        },
    )

    assert response.status_code == 400
    assert "at least 12 characters" in " ".join(response.context["form"].errors["password1"])
    assert not User.objects.filter(username="mary@example.org").exists()


def test_password_change_refuses_a_short_password(client, patient):
    client.force_login(patient.user)
    response = client.post(
        reverse("password_change"),
        {"old_password": "pass-word-123", "new_password1": "short-pw-1", "new_password2": "short-pw-1"},
    )

    assert response.status_code == 200
    assert "at least 12 characters" in " ".join(response.context["form"].errors["new_password2"])
    patient.user.refresh_from_db()
    assert patient.user.check_password("pass-word-123")
