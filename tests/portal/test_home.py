"""The landing page: what the clinics offer, and the ways into the portal."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ClinicFactory, DepartmentFactory

pytestmark = pytest.mark.django_db


def test_it_shows_visitors_no_clinic_by_default(client, clinic, department, other_org_clinic):
    clinic.listed_publicly = other_org_clinic.listed_publicly = True
    clinic.save()
    other_org_clinic.save()

    for url in ("/", "/portal/signup/"):
        html = client.get(url).content.decode()
        assert clinic.name not in html, url
        assert other_org_clinic.name not in html, url
        assert "General medicine" not in html, url


def test_it_shows_visitors_only_the_listed_clinics_when_the_deployment_publishes_them(
    client, settings, clinic, other_org_clinic
):
    settings.OPD_PUBLIC_CLINICS = "listed"
    clinic.listed_publicly = True
    clinic.save()

    html = client.get("/").content.decode()

    assert clinic.name in html
    assert reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]) in html
    assert other_org_clinic.name not in html
    assert other_org_clinic.name not in client.get("/portal/signup/").content.decode()


def test_a_signed_in_patient_sees_only_their_organizations_clinics(as_patient, clinic, other_org_clinic):
    html = as_patient.get("/").content.decode()

    assert clinic.name in html
    assert other_org_clinic.name not in html


def test_it_shows_open_clinics_and_their_open_departments(client, settings, clinic, department, org):
    settings.OPD_PUBLIC_CLINICS = "listed"
    DepartmentFactory(clinic=clinic, name="Closed ward", is_active=False)
    ClinicFactory(organization=org, name="Shut Clinic", is_active=False, listed_publicly=True)
    clinic.address = "1 Riverside Walk"
    clinic.listed_publicly = True
    clinic.save()

    html = client.get("/").content.decode()

    assert "Riverside Central" in html
    assert "1 Riverside Walk" in html
    assert "General medicine" in html
    assert "Closed ward" not in html
    assert "Shut Clinic" not in html


def test_it_links_visitors_to_booking_sign_up_and_log_in(client, clinic):
    html = client.get("/").content.decode()

    for url in (reverse("portal:find"), reverse("portal:signup"), reverse("login")):
        assert f'href="{url}"' in html


def test_it_links_a_signed_in_patient_to_their_appointments(as_patient):
    html = as_patient.get("/").content.decode()

    assert f'href="{reverse("portal:appointments")}"' in html
    assert reverse("portal:signup") not in html


def test_it_reads_the_clinics_in_a_fixed_number_of_queries(
    client, settings, org, django_assert_max_num_queries
):
    settings.OPD_PUBLIC_CLINICS = "listed"
    for _ in range(5):
        DepartmentFactory(clinic=ClinicFactory(organization=org, listed_publicly=True))

    with django_assert_max_num_queries(4):
        client.get("/")
