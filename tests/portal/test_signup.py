"""Self-registration through a clinic's own sign-up link: one account and one patient record, or
nothing and a message beside the field. Without a clinic link there is no sign-up form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import Role, User
from patients.models import Patient
from tests.factories import ClinicFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/portal/signup/"


def link(clinic) -> str:
    return f"/portal/c/{clinic.organization.slug}/{clinic.code}/signup/"


@pytest.fixture
def signup(clinic) -> str:
    return link(clinic)


def form(**overrides) -> dict:
    data = {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "email": "Mary.Seacole@example.org",
        "phone": "+44 20 7946 0999",
        "password1": "kingston-1805-crimea",
        "password2": "kingston-1805-crimea",
    }
    data.update(overrides)
    return data


def counts() -> tuple[int, int]:
    return User.objects.count(), Patient.objects.count()


def test_it_is_named_portal_signup():
    assert reverse("portal:signup") == SIGNUP


def test_the_clinic_link_is_named_portal_signup_at_clinic(clinic):
    assert reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]) == link(clinic)


def test_it_shows_a_labelled_form_naming_the_clinic(client, signup, clinic):
    html = client.get(signup).content.decode()

    assert clinic.name in html
    assert 'name="clinic"' not in html  # no list of clinics to choose an organization from

    for field in ("first_name", "last_name", "date_of_birth", "email", "phone", "password1", "password2"):
        assert f'<label for="id_{field}">' in html


def test_it_creates_the_user_and_the_linked_patient_and_signs_in(client, signup, clinic):
    response = client.post(signup, form())

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


def test_it_joins_the_organization_of_the_clinic_in_the_link(client, clinic, other_org_clinic):
    client.post(link(other_org_clinic), form())

    patient = Patient.objects.get()
    assert (patient.organization_id, patient.registered_at_clinic_id) == (
        other_org_clinic.organization_id,
        other_org_clinic.pk,
    )


def test_it_refuses_sign_up_without_a_clinic_link_and_explains(client, clinic, other_org_clinic):
    response = client.get(SIGNUP)

    assert response.status_code == 404
    html = response.content.decode()
    assert "sign-up link" in html
    assert 'name="email"' not in html
    assert clinic.name not in html
    assert other_org_clinic.name not in html
    assert client.post(SIGNUP, form()).status_code == 405
    assert counts() == (User.objects.count(), 0)


@pytest.mark.parametrize(
    "path", ["/portal/c/no-such-org/main/signup/", "/portal/c/{org}/no-such-clinic/signup/"]
)
def test_it_refuses_a_link_that_names_no_clinic(client, clinic, path):
    before = counts()

    response = client.post(path.format(org=clinic.organization.slug), form())

    assert response.status_code == 404
    assert "sign-up link" in response.content.decode()
    assert counts() == before


def test_it_refuses_a_duplicate_email_whatever_its_case(client, signup, patient):
    before = counts()

    response = client.post(signup, form(email="PAT@example.org"))

    assert response.status_code == 400
    errors = response.context["form"].errors["email"]
    assert "already exists" in errors[0]
    assert "already exists" in response.content.decode()
    assert counts() == before


def test_it_refuses_an_email_already_used_as_a_username(client, signup, clinic):
    UserFactory(username="mary.seacole@example.org", email="", organization=clinic.organization)
    before = counts()

    response = client.post(signup, form())

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
def test_it_shows_the_error_beside_the_field_and_writes_nothing(client, signup, overrides, field):
    before = counts()

    response = client.post(signup, form(**overrides))

    assert response.status_code == 400
    assert field in response.context["form"].errors, response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert counts() == before


def test_it_sends_a_signed_in_user_on(as_patient, signup):
    assert as_patient.get(SIGNUP).url == reverse("portal:after-login")
    assert as_patient.get(signup).url == reverse("portal:after-login")


def test_it_refuses_a_closed_clinic(client, clinic):
    closed = ClinicFactory(organization=clinic.organization, is_active=False)

    response = client.post(link(closed), form())

    assert response.status_code == 404
    assert not Patient.objects.exists()
