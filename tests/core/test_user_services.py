"""Users and memberships: services, their audit events and tenancy, and the doors that call them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from opd.core.errors import NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent, Membership, Role, User
from opd.core.services import (
    membership_add,
    membership_remove,
    user_change_role,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_password,
    user_update,
)

pytestmark = pytest.mark.django_db


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("pk")


def test_it_creates_a_user_with_a_hashed_password_and_an_audit_event(admin_user, org):
    user = user_create(
        actor=admin_user,
        username="nurse",
        password="a-long-pass-phrase-42",
        role=Role.STAFF,
        organization=org,
        is_staff=True,
    )
    assert user.check_password("a-long-pass-phrase-42")
    assert user.password != "a-long-pass-phrase-42"
    event = last_event("user.created")
    assert (event.actor, event.object_id, event.organization_id) == (admin_user, str(user.pk), org.pk)
    assert event.data == {"role": Role.STAFF, "is_staff": True}


def test_it_leaves_the_password_unusable_when_none_is_given(admin_user, org):
    user = user_create(actor=admin_user, username="x", password=None, role=Role.STAFF, organization=org)
    assert not user.has_usable_password()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"role": Role.DOCTOR, "is_staff": True}, "is_staff"),
        ({"role": Role.PATIENT, "is_staff": True}, "is_staff"),
        ({"role": Role.STAFF, "organization": None}, "organization"),
        ({"role": Role.STAFF, "username": "admin"}, "username"),  # taken by admin_user
    ],
)
def test_it_refuses_a_user_the_rules_forbid(admin_user, org, fields, field):
    arguments = {"username": "new", "password": "pw", "organization": org, **fields}
    with pytest.raises((ValidationFailed, NotFound)) as caught:
        user_create(actor=None, **arguments)
    if isinstance(caught.value, ValidationFailed):
        assert field in caught.value.fields
    assert not User.objects.filter(username="new").exists()


def test_it_creates_users_only_in_the_actors_organization(admin_user, other_org):
    with pytest.raises(NotFound):
        user_create(actor=admin_user, username="spy", password="pw", role=Role.STAFF, organization=other_org)


def test_it_lets_only_a_superuser_grant_superuser(admin_user, staff_user):
    with pytest.raises(PermissionDenied):
        user_update(actor=admin_user, user=staff_user, is_superuser=True)
    staff_user.refresh_from_db()
    assert staff_user.is_superuser is False


def test_it_updates_a_user_and_says_which_fields_changed(admin_user, staff_user):
    old_first_name = staff_user.first_name
    user_update(actor=admin_user, user=staff_user, first_name="Joy", email="joy@example.org")
    assert last_event("user.changed").data == {
        "fields": ["email", "first_name"],
        "changes": {
            "email": {"before": "reception@example.org", "after": "joy@example.org"},
            "first_name": {"before": old_first_name, "after": "Joy"},
        },
    }
    user_update(actor=admin_user, user=staff_user, first_name="Joy")  # nothing changes: no event
    assert AuditEvent.objects.filter(action="user.changed").count() == 1


def test_it_changes_a_role_with_admin_access_and_audits_old_and_new(admin_user, staff_user):
    with pytest.raises(ValidationFailed) as caught:
        user_change_role(actor=admin_user, user=staff_user, role=Role.DOCTOR)
    assert "is_staff" in caught.value.fields
    user = user_change_role(actor=admin_user, user=staff_user, role=Role.DOCTOR, is_staff=False)
    assert (user.role, user.is_staff) == (Role.DOCTOR, False)
    event = last_event("user.role_changed")
    assert (event.data["old_role"], event.data["new_role"]) == (Role.STAFF, Role.DOCTOR)


def test_it_deactivates_and_reactivates_a_user_but_not_oneself(admin_user, staff_user):
    assert user_deactivate(actor=admin_user, user=staff_user).is_active is False
    assert last_event("user.deactivated").object_id == str(staff_user.pk)
    assert user_reactivate(actor=admin_user, user=staff_user).is_active is True
    with pytest.raises(ValidationFailed):
        user_deactivate(actor=admin_user, user=admin_user)


def test_it_hides_another_organizations_user(admin_user, other_org_doctor):
    with pytest.raises(NotFound):
        user_deactivate(actor=admin_user, user=other_org_doctor.user)
    with pytest.raises(NotFound):
        user_set_password(actor=admin_user, user=other_org_doctor.user, password="x")


def test_it_adds_and_removes_memberships_within_the_organization(
    admin_user, staff_user, other_clinic, other_org_clinic
):
    membership = membership_add(actor=admin_user, user=staff_user, clinic=other_clinic)
    assert last_event("membership.added").data == {"user_id": staff_user.pk, "clinic_id": other_clinic.pk}
    with pytest.raises(ValidationFailed) as caught:
        membership_add(actor=admin_user, user=staff_user, clinic=other_clinic)
    assert "clinic" in caught.value.fields
    with pytest.raises(NotFound):  # another organization's clinic does not exist for this admin
        membership_add(actor=admin_user, user=staff_user, clinic=other_org_clinic)
    with pytest.raises(ValidationFailed) as caught:  # nor may anyone put a user in a foreign clinic
        membership_add(actor=None, user=staff_user, clinic=other_org_clinic)
    assert "clinic" in caught.value.fields
    membership_remove(actor=admin_user, membership=membership)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert last_event("membership.removed").data["clinic_id"] == other_clinic.pk


# The doors ---------------------------------------------------------------------------------------------


def test_an_admin_add_of_a_user_goes_through_the_services(client, admin_user, clinic):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:core_user_add"),
        {
            "username": "nurse-joy",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "role": Role.STAFF,
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-clinic": clinic.pk,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="nurse-joy")
    assert last_event("user.created").actor == admin_user
    assert last_event("membership.added").data == {"user_id": user.pk, "clinic_id": clinic.pk}


def test_an_admin_change_of_a_users_role_and_access_is_audited(client, admin_user, staff_user, clinic):
    client.force_login(admin_user)
    membership = Membership.objects.get(user=staff_user)
    response = client.post(
        reverse("admin:core_user_change", args=[staff_user.pk]),
        {
            "username": staff_user.username,
            "first_name": staff_user.first_name,
            "last_name": staff_user.last_name,
            "email": staff_user.email,
            "role": Role.DOCTOR,
            # is_staff and is_active unticked: leaves the admin, and the clinic
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-user": staff_user.pk,
            "memberships-0-clinic": clinic.pk,
            "memberships-0-DELETE": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    staff_user.refresh_from_db()
    assert (staff_user.role, staff_user.is_staff, staff_user.is_active) == (Role.DOCTOR, False, False)
    assert last_event("user.role_changed").data["old_role"] == Role.STAFF
    assert last_event("user.deactivated").actor == admin_user
    assert last_event("membership.removed").data["clinic_id"] == clinic.pk


def test_the_admins_password_page_saves_through_the_service(client, admin_user, staff_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[staff_user.pk]),
        {"password1": "another-long-phrase-7", "password2": "another-long-phrase-7"},
    )
    assert response.status_code == 302
    staff_user.refresh_from_db()
    assert staff_user.check_password("another-long-phrase-7")
    assert last_event("user.password_changed").actor == admin_user


def test_portal_sign_up_creates_the_account_through_the_service(client, clinic):
    response = client.post(
        reverse("portal:signup-at-clinic", args=[clinic.organization.slug, clinic.code]),
        {
            "first_name": "Mary",
            "last_name": "Seacole",
            "email": "mary@example.org",
            "date_of_birth": dt.date(1990, 5, 1).isoformat(),
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="mary@example.org")
    event = last_event("user.created")
    assert (event.object_id, event.data["role"]) == (str(user.pk), Role.PATIENT)
