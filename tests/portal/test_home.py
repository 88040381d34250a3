"""The landing page: what the clinics offer, and the ways into the portal."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ClinicFactory, DepartmentFactory

pytestmark = pytest.mark.django_db


def test_it_shows_open_clinics_and_their_open_departments(client, clinic, department, org):
    DepartmentFactory(clinic=clinic, name="Closed ward", is_active=False)
    ClinicFactory(organization=org, name="Shut Clinic", is_active=False)
    clinic.address = "1 Riverside Walk"
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


def test_it_reads_the_clinics_in_a_fixed_number_of_queries(client, org, django_assert_max_num_queries):
    for _ in range(5):
        DepartmentFactory(clinic=ClinicFactory(organization=org))

    with django_assert_max_num_queries(4):
        client.get("/")
