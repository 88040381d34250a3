"""Self-registration: one account and one patient record, or nothing and a message beside the field."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import Role, User
from patients.models import Patient
from tests.factories import ClinicFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/portal/signup/"


def form(**overrides) -> dict:
    data = {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "email": "Mary.Seacole@example.org",
        "phone": "+44 20 7946 0999",
        "clinic": "",
        "password1": "kingston-1805-crimea",
        "password2": "kingston-1805-crimea",
    }
    data.update(overrides)
    return data


def counts() -> tuple[int, int]:
    return User.objects.count(), Patient.objects.count()


def test_it_is_named_portal_signup():
    assert reverse("portal:signup") == SIGNUP


def test_it_shows_a_labelled_form(client, clinic):
    html = client.get(SIGNUP).content.decode()

    for field in ("first_name", "last_name", "date_of_birth", "email", "phone", "password1", "password2"):
        assert f'<label for="id_{field}">' in html


def test_it_creates_the_user_and_the_linked_patient_and_signs_in(client, clinic):
    response = client.post(SIGNUP, form(clinic=clinic.pk))

    assert response.status_code == 302
    assert response.url == reverse("portal:find")
    user = User.objects.get(username="mary.seacole@example.org")
    assert (user.role, user.organization_id, user.email) == (
        Role.PATIENT,
        clinic.organization_id,
        user.username,
    )
    assert user.check_password("kingston-1805-crimea")
    patient = user.patient
    assert (patient.first_name, patient.last_name, str(patient.date_of_birth)) == (
        "Mary",
        "Seacole",
        "1985-11-23",
    )
    assert (patient.organization_id, patient.registered_at_clinic_id) == (clinic.organization_id, clinic.pk)
    assert patient.mrn.startswith("P")
    assert client.get(reverse("portal:find")).status_code == 200


def test_it_joins_the_single_organization_when_no_clinic_is_chosen(client, clinic):
    client.post(SIGNUP, form())

    patient = Patient.objects.get()
    assert (patient.organization_id, patient.registered_at_clinic_id) == (clinic.organization_id, None)


def test_it_asks_for_a_clinic_when_several_organizations_take_patients(client, clinic, other_org_clinic):
    before = counts()

    response = client.post(SIGNUP, form())

    assert response.status_code == 400
    assert "clinic" in response.context["form"].errors
    assert counts() == before


def test_it_refuses_a_duplicate_email_whatever_its_case(client, clinic, patient):
    before = counts()

    response = client.post(SIGNUP, form(email="PAT@example.org"))

    assert response.status_code == 400
    errors = response.context["form"].errors["email"]
    assert "already exists" in errors[0]
    assert "already exists" in response.content.decode()
    assert counts() == before


def test_it_refuses_an_email_already_used_as_a_username(client, clinic):
    UserFactory(username="mary.seacole@example.org", email="", organization=clinic.organization)
    before = counts()

    response = client.post(SIGNUP, form())

    assert "email" in response.context["form"].errors
    assert counts() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password1": "12345678", "password2": "12345678"}, "password1"),
        ({"password1": "password", "password2": "password"}, "password1"),
        ({"password2": "something-else-77"}, "password2"),
        ({"email": "not-an-email"}, "email"),
        ({"first_name": ""}, "first_name"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "yesterday"}, "date_of_birth"),
    ],
)
def test_it_shows_the_error_beside_the_field_and_writes_nothing(client, clinic, overrides, field):
    before = counts()

    response = client.post(SIGNUP, form(**overrides))

    assert response.status_code == 400
    assert field in response.context["form"].errors, response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert counts() == before


def test_it_sends_a_signed_in_user_on(as_patient):
    assert as_patient.get(SIGNUP).url == reverse("portal:after-login")


def test_it_refuses_a_closed_clinic(client, clinic):
    closed = ClinicFactory(organization=clinic.organization, is_active=False)

    response = client.post(SIGNUP, form(clinic=closed.pk))

    assert "clinic" in response.context["form"].errors
    assert not Patient.objects.exists()
