"""The admin of organizations, clinics, departments, users and the audit trail: who sees and edits what."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opd.core.models import AuditEvent, Clinic, Membership, Role, User
from tests.factories import ClinicFactory, DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db


def changelist(model: str) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def listed(response) -> set:
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


CORE_MODELS = ["core.organization", "core.clinic", "core.department", "core.user", "core.auditevent"]


@pytest.mark.parametrize("model", CORE_MODELS)
def test_it_opens_every_core_list_for_an_administrator(as_user, admin_user, department, model):
    assert as_user(admin_user).get(changelist(model)).status_code == 200


@pytest.mark.parametrize("model", CORE_MODELS)
def test_it_opens_every_core_list_for_a_superuser(as_user, superuser, department, model):
    assert as_user(superuser).get(changelist(model)).status_code == 200


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("core.clinic", 200),
        ("core.department", 200),
        ("core.organization", 403),
        ("core.user", 403),
        ("core.auditevent", 403),
    ],
)
def test_it_gives_staff_clinics_and_departments_but_not_users_or_the_audit_trail(
    as_user, staff_user, department, model, status
):
    assert as_user(staff_user).get(changelist(model)).status_code == status


def test_it_shows_staff_only_the_clinics_they_work_at(as_user, staff_user, clinic, other_clinic):
    response = as_user(staff_user).get(changelist("core.clinic"))
    assert listed(response) == {clinic.pk}
    assert as_user(staff_user).get(change_url(other_clinic)).status_code == 404


def test_it_shows_an_administrator_the_clinics_of_their_organization_only(
    as_user, admin_user, clinic, other_clinic, other_org_clinic
):
    response = as_user(admin_user).get(changelist("core.clinic"))
    assert listed(response) == {clinic.pk, other_clinic.pk}
    assert "Hillside" not in response.content.decode()
    assert as_user(admin_user).get(change_url(other_org_clinic)).status_code == 404


def test_it_gives_a_404_for_another_organizations_user(as_user, admin_user, other_org_user):
    response = as_user(admin_user).get(changelist("core.user"))
    assert other_org_user.pk not in listed(response)
    assert as_user(admin_user).get(change_url(other_org_user)).status_code == 404


def test_it_keeps_superusers_out_of_an_administrators_reach(as_user, admin_user, org):
    root_in_org = UserFactory(organization=org, role=Role.ADMIN, is_staff=True, is_superuser=True)
    client = as_user(admin_user)
    assert client.get(change_url(root_in_org)).status_code == 404
    password_url = reverse("admin:auth_user_password_change", args=[root_in_org.pk])
    assert client.get(password_url).status_code == 404


@pytest.mark.parametrize("url_name", ["admin:index", "admin:patients_patient_changelist"])
def test_it_sends_doctors_and_patients_to_the_login_page(client, doctor, patient, url_name):
    for user in (doctor.user, patient.user):
        client.force_login(user)
        response = client.get(reverse(url_name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_it_refuses_a_doctor_even_if_flagged_staff_by_mistake(client, doctor):
    User.objects.filter(pk=doctor.user.pk).update(is_staff=True)
    client.force_login(doctor.user)
    for url in (
        changelist("patients.patient"),
        changelist("scheduling.appointment"),
        changelist("core.user"),
        reverse("admin:patients_patient_add"),
    ):
        assert client.get(url).status_code == 403
    index = client.get(reverse("admin:index"))
    assert index.context["app_list"] == []


def test_it_does_not_offer_idempotency_records_at_all(as_user, superuser):
    assert as_user(superuser).get("/admin/core/idempotencyrecord/").status_code == 404


def test_it_creates_a_staff_user_in_the_administrators_organization(as_user, admin_user, clinic, other_org):
    response = as_user(admin_user).post(
        reverse("admin:core_user_add"),
        {
            "username": "nurse-joy",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "first_name": "Joy",
            "last_name": "Pink",
            "email": "joy@example.org",
            "organization": other_org.pk,  # ignored: the field is fixed to the administrator's own
            "role": Role.STAFF,
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-clinic": clinic.pk,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="nurse-joy")
    assert user.organization_id == admin_user.organization_id
    assert (user.role, user.is_staff, user.is_superuser) == (Role.STAFF, True, False)
    assert list(Membership.objects.filter(user=user).values_list("clinic_id", flat=True)) == [clinic.pk]


def test_it_offers_no_clinic_of_another_organization_for_a_membership(
    as_user, admin_user, staff_user, other_org_clinic
):
    response = as_user(admin_user).post(
        change_url(staff_user),
        {
            "username": staff_user.username,
            "first_name": "",
            "last_name": "",
            "email": "",
            "role": Role.STAFF,
            "is_active": "on",
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-clinic": other_org_clinic.pk,
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Membership.objects.filter(clinic=other_org_clinic).exists()


def test_it_refuses_admin_access_for_a_doctor_account(as_user, admin_user, doctor):
    response = as_user(admin_user).post(
        change_url(doctor.user),
        {
            "username": doctor.user.username,
            "role": Role.DOCTOR,
            "is_active": "on",
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Doctors and patients work in the portal" in response.content.decode()
    doctor.user.refresh_from_db()
    assert doctor.user.is_staff is False


def test_it_never_lets_an_administrator_grant_superuser(as_user, admin_user, staff_user):
    response = as_user(admin_user).post(
        change_url(staff_user),
        {
            "username": staff_user.username,
            "role": Role.STAFF,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    staff_user.refresh_from_db()
    assert staff_user.is_superuser is False


def test_it_adds_a_clinic_to_the_administrators_organization(as_user, admin_user, org, other_org):
    response = as_user(admin_user).post(
        reverse("admin:core_clinic_add"),
        {
            "organization": other_org.pk,  # ignored
            "name": "Riverside South",
            "code": "south",
            "time_zone": "Europe/Dublin",
            "cancellation_cutoff_minutes": "60",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Clinic.objects.get(code="south").organization_id == org.pk


def test_it_reports_a_duplicate_clinic_code_beside_the_field(as_user, admin_user, clinic):
    response = as_user(admin_user).post(
        reverse("admin:core_clinic_add"),
        {"name": "Another", "code": clinic.code, "time_zone": "UTC", "cancellation_cutoff_minutes": "60"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Clinic.objects.filter(code=clinic.code).count() == 1


def test_it_shows_the_audit_trail_of_the_administrators_organization_only(
    as_user, admin_user, org, other_org, superuser
):
    mine = AuditEvent.objects.create(
        organization=org, action="patient.registered", object_type="x", object_id="1"
    )
    theirs = AuditEvent.objects.create(
        organization=other_org, action="patient.registered", object_type="x", object_id="2"
    )
    client = as_user(admin_user)
    response = client.get(changelist("core.auditevent"))
    assert mine.pk in listed(response)
    assert theirs.pk not in listed(response)
    assert client.get(change_url(theirs)).status_code == 404
    assert client.get(change_url(mine)).status_code == 200
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert client.post(change_url(mine), {"action": "forged"}).status_code == 403
    assert client.get(reverse("admin:core_auditevent_delete", args=[mine.pk])).status_code == 403


def test_it_offers_only_doctor_accounts_without_a_profile_when_picking_a_doctors_user(
    as_user, admin_user, org, doctor, other_org
):
    free = UserFactory(organization=org, role=Role.DOCTOR, last_name="Quinn")
    UserFactory(organization=org, role=Role.STAFF, last_name="Quill")
    DoctorFactory(user__organization=other_org, user__role=Role.DOCTOR, user__last_name="Quade")
    response = as_user(admin_user).get(
        reverse("admin:autocomplete"),
        {"app_label": "scheduling", "model_name": "doctor", "field_name": "user", "term": "Qu"},
    )
    assert [int(r["id"]) for r in response.json()["results"]] == [free.pk]


def test_it_keeps_a_staff_user_out_of_clinic_editing(as_user, staff_user, clinic):
    client = as_user(staff_user)
    assert client.get(change_url(clinic)).status_code == 200  # view only
    response = client.post(change_url(clinic), {"name": "Renamed", "code": clinic.code})
    assert response.status_code == 403
    assert Clinic.objects.get(pk=clinic.pk).name == "Riverside Central"
    assert client.get(reverse("admin:core_clinic_add")).status_code == 403


def test_it_lets_a_superuser_choose_any_organization_for_a_clinic(as_user, superuser, other_org):
    response = as_user(superuser).post(
        reverse("admin:core_clinic_add"),
        {
            "organization": other_org.pk,
            "name": "Hillside East",
            "code": "east",
            "time_zone": "UTC",
            "cancellation_cutoff_minutes": "60",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Clinic.objects.get(code="east").organization_id == other_org.pk


def test_it_lists_only_clinics_of_the_users_organization_in_the_department_filter(
    as_user, admin_user, department, other_org_clinic
):
    ClinicFactory(organization=other_org_clinic.organization, name="Hillside Annex")
    body = as_user(admin_user).get(changelist("core.department")).content.decode()
    assert "Riverside Central" in body
    assert "Hillside" not in body


def _models_on_index(response) -> set[str]:
    return {
        f"{app['app_label']}.{m['object_name'].lower()}"
        for app in response.context["app_list"]
        for m in app["models"]
    }


def test_it_shows_each_role_the_models_it_works_with(as_user, admin_user, staff_user):
    staff_index = as_user(staff_user).get(reverse("admin:index"))
    assert staff_index.status_code == 200
    assert _models_on_index(staff_index) == {
        "core.clinic",
        "core.department",
        "patients.patient",
        "patients.allergy",
        "patients.problem",
        "patients.medication",
        "scheduling.doctor",
        "scheduling.availabilityrule",
        "scheduling.availabilityexception",
        "scheduling.slot",
        "scheduling.appointment",
        "consultations.carenote",
        "notifications.notification",
        "notifications.contactpreference",
        "notifications.clinicnotificationsettings",
        "billing.billingsettings",
        "billing.feeschedule",
        "billing.invoice",
    }
    admin_index = as_user(admin_user).get(reverse("admin:index"))
    assert _models_on_index(admin_index) - _models_on_index(staff_index) == {
        "core.organization",
        "core.user",
        "core.auditevent",
        "core.flaggedaccess",
        "core.accessreview",
        "archive.archivedrecord",
        "analytics.reportdefinition",
        "analytics.reportrun",
    }


@pytest.mark.parametrize("persona", ["superuser", "admin_user", "staff_user"])
def test_it_renders_every_page_a_persona_may_open(
    request, client, persona, staff_user, patient, slot, department
):
    import datetime as dt

    from django.apps import apps
    from django.contrib import admin
    from django.utils import timezone

    from scheduling.models import AvailabilityException
    from scheduling.services import appointment_book, availability_rule_create

    appointment_book(actor=staff_user, patient=patient, slot=slot)
    availability_rule_create(
        actor=None,
        doctor=slot.doctor,
        department=department,
        weekday=2,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    AvailabilityException.objects.create(doctor=slot.doctor, kind="leave", date=timezone.localdate())
    AuditEvent.objects.create(organization=patient.organization, action="x.y", object_type="x", object_id="1")
    user = request.getfixturevalue(persona)
    client.force_login(user)
    fake = type("Request", (), {"user": user})()
    opened = 0
    for model in apps.get_models():
        if model._meta.app_label not in {"core", "patients", "scheduling"} or not admin.site.is_registered(
            model
        ):
            continue
        model_admin = admin.site.get_model_admin(model)
        if model_admin.has_add_permission(fake):
            opened += 1
            assert (
                client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")).status_code
                == 200
            )
        if model_admin.has_view_permission(fake):
            obj = model_admin.get_queryset(fake).first()
            if obj is not None:
                opened += 1
                assert client.get(change_url(obj)).status_code == 200, model
    assert opened >= 8


def test_the_audit_list_filters_record_accesses(client, admin_user, org, patient):
    from opd.core.audit import audit, record_access
    from opd.core.models import AuditEvent

    record_access(
        actor=admin_user, action="record.viewed", obj=patient, organization_id=org.pk, patient_id=patient.pk
    )
    audit(actor=admin_user, action="patient.updated", obj=patient, organization_id=org.pk)
    client.force_login(admin_user)

    page = client.get(reverse("admin:core_auditevent_changelist"), {"area": "record."})

    assert page.status_code == 200
    shown = list(page.context["cl"].result_list)
    assert [event.action for event in shown] == ["record.viewed"]
    assert AuditEvent.objects.filter(action="patient.updated").exists()


def test_an_administrator_makes_a_staff_member_a_nurse_at_a_clinic(as_user, admin_user, staff_user, clinic):
    from opd.core.models import AuditEvent

    membership = Membership.objects.get(user=staff_user, clinic=clinic)
    response = as_user(admin_user).post(
        change_url(staff_user),
        {
            "username": staff_user.username,
            "role": Role.STAFF,
            "is_active": "on",
            "is_staff": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-user": staff_user.pk,
            "memberships-0-clinic": clinic.pk,
            "memberships-0-is_nurse": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    again = Membership.objects.get(user=staff_user, clinic=clinic)
    assert again.pk == membership.pk  # the same membership, now with the capability
    assert again.is_nurse
    assert AuditEvent.objects.filter(action="membership.nurse_granted", actor=admin_user).exists()
