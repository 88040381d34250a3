"""The doctor profile: doctor_create / doctor_update, their rules and audit events, the admin's use of them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.errors import NotFound, ValidationFailed
from opd.core.models import AuditEvent, Role
from scheduling.models import ApprovalStatus, Doctor
from scheduling.services import doctor_create, doctor_update
from tests.factories import DepartmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("pk")


@pytest.fixture
def account(org):
    return UserFactory(username="dr-new", role=Role.DOCTOR, organization=org)


def test_it_creates_a_pending_profile_with_its_departments(admin_user, org, account, department):
    doctor = doctor_create(
        actor=admin_user,
        user=account,
        organization=org,
        specialization="Cardiology",
        license_number="L-1",
        departments=[department],
    )
    assert doctor.approval_status == ApprovalStatus.PENDING
    assert list(doctor.departments.all()) == [department]
    event = last_event("doctor.created")
    assert (event.actor, event.data["departments"]) == (admin_user, [department.pk])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": Role.STAFF}, "user"),
        ({"foreign_department": True}, "departments"),
    ],
)
def test_it_refuses_a_profile_the_rules_forbid(admin_user, org, account, other_org_department, change, field):
    if "role" in change:
        account.role = change["role"]
        account.save()
    departments = [other_org_department] if change.get("foreign_department") else []
    with pytest.raises(ValidationFailed) as caught:
        doctor_create(
            actor=admin_user,
            user=account,
            organization=org,
            specialization="x",
            license_number="L-2",
            departments=departments,
        )
    assert field in caught.value.fields
    assert not Doctor.objects.filter(user=account).exists()


def test_it_refuses_another_organizations_account_or_doctor(admin_user, org, other_org_doctor):
    with pytest.raises(ValidationFailed) as caught:
        doctor_create(
            actor=None, user=other_org_doctor.user, organization=org, specialization="x", license_number="L"
        )
    assert "user" in caught.value.fields
    with pytest.raises(NotFound):
        doctor_update(actor=admin_user, doctor=other_org_doctor, room="Room 9")


def test_it_updates_the_profile_and_says_what_changed(admin_user, doctor, department, other_clinic):
    north = DepartmentFactory(clinic=other_clinic, code="nth")
    doctor_update(actor=admin_user, doctor=doctor, room="Room 3", departments=[department, north])
    assert set(doctor.departments.all()) == {department, north}
    assert last_event("doctor.changed").data == {
        "fields": ["departments", "room"],
        "changes": {
            "departments": {"before": [department.pk], "after": sorted([department.pk, north.pk])},
            "room": {"before": "", "after": "Room 3"},
        },
    }


def test_the_admin_edits_the_room_through_the_service(client, admin_user, doctor, department):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:scheduling_doctor_change", args=[doctor.pk]),
        {
            "specialization": doctor.specialization,
            "license_number": doctor.license_number,
            "departments": [department.pk],
            "room": "Room 7",
            "availability_rules-TOTAL_FORMS": "0",
            "availability_rules-INITIAL_FORMS": "0",
            "availability_exceptions-TOTAL_FORMS": "0",
            "availability_exceptions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    doctor.refresh_from_db()
    assert doctor.room == "Room 7"
    assert last_event("doctor.changed").actor == admin_user
