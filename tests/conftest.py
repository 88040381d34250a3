"""Personas every test can ask for: one organization with two clinics, and a second organization."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from opd.core.models import Role
from scheduling.services import appointment_book

from .factories import (
    ClinicFactory,
    DepartmentFactory,
    DoctorFactory,
    OrganizationFactory,
    PatientFactory,
    SlotFactory,
    UserFactory,
)


@pytest.fixture
def org():
    return OrganizationFactory(name="Riverside Health", slug="riverside")


@pytest.fixture
def clinic(org):
    return ClinicFactory(organization=org, name="Riverside Central", code="central")


@pytest.fixture
def other_clinic(org):
    return ClinicFactory(organization=org, name="Riverside North", code="north", time_zone="Europe/Paris")


@pytest.fixture
def department(clinic):
    return DepartmentFactory(clinic=clinic, name="General medicine", code="gen")


@pytest.fixture
def other_org():
    return OrganizationFactory(name="Hillside Care", slug="hillside")


@pytest.fixture
def other_org_clinic(other_org):
    return ClinicFactory(organization=other_org, name="Hillside Clinic", code="hill")


@pytest.fixture
def other_org_department(other_org_clinic):
    return DepartmentFactory(clinic=other_org_clinic, name="Family medicine", code="fam")


@pytest.fixture
def admin_user(org):
    return UserFactory(username="admin", role=Role.ADMIN, organization=org, is_staff=True)


@pytest.fixture
def staff_user(org, clinic):
    return UserFactory(
        username="reception", role=Role.STAFF, organization=org, is_staff=True, clinics=[clinic]
    )


@pytest.fixture
def other_clinic_staff(org, other_clinic):
    return UserFactory(
        username="north-reception", role=Role.STAFF, organization=org, is_staff=True, clinics=[other_clinic]
    )


@pytest.fixture
def doctor(org, department):
    return DoctorFactory(user__username="dr-house", user__organization=org, departments=[department])


@pytest.fixture
def other_org_doctor(other_org, other_org_department):
    return DoctorFactory(
        user__username="dr-other", user__organization=other_org, departments=[other_org_department]
    )


@pytest.fixture
def patient(org):
    user = UserFactory(username="pat", role=Role.PATIENT, organization=org)
    return PatientFactory(organization=org, user=user, first_name="Ada", last_name="Lovelace")


@pytest.fixture
def other_patient(org):
    user = UserFactory(username="other-pat", role=Role.PATIENT, organization=org)
    return PatientFactory(organization=org, user=user, first_name="Grace", last_name="Hopper")


@pytest.fixture
def other_org_patient(other_org):
    return PatientFactory(organization=other_org, first_name="Alan", last_name="Turing")


@pytest.fixture
def slot(doctor, department):
    return SlotFactory(doctor=doctor, department=department, capacity=2)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def api_as(api):
    """api_as(user) -> an API client authenticated with that user's token."""
    from rest_framework.authtoken.models import Token

    def login(user):
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return login


_slot_offsets = itertools.count()


def future_slot(doctor, department, *, days: float = 3, **kwargs):
    """A slot about `days` ahead; each call's slot starts 20 minutes after the previous call's."""
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=days, minutes=20 * next(_slot_offsets))
    return SlotFactory(doctor=doctor, department=department, start=start, capacity=4, **kwargs)


@pytest.fixture
def book(django_capture_on_commit_callbacks, staff_user):
    """book(patient, slot) -> appointment, with the booking's events (and the sends they queue) run."""

    def run(patient, slot, actor=None):
        with django_capture_on_commit_callbacks(execute=True):
            return appointment_book(actor=actor or staff_user, patient=patient, slot=slot)

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """with committed(): ... runs what the block registers with on_commit, as a real commit would."""

    def context():
        return django_capture_on_commit_callbacks(execute=True)

    return context
