"""Organizations, clinics (and their time zone), departments: services, their audit events, the admin."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from opd.core.errors import NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent, Clinic, Department, Organization
from opd.core.services import (
    clinic_create,
    clinic_update,
    department_create,
    department_update,
    organization_create,
    organization_update,
)
from scheduling.models import Slot
from scheduling.services import availability_rule_create

pytestmark = pytest.mark.django_db


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("pk")


def test_it_creates_an_organization_for_a_superuser_only(admin_user, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-long-enough-1")
    organization = organization_create(actor=root, name="Lakeside", slug="lakeside")
    assert last_event("organization.created").object_id == str(organization.pk)
    with pytest.raises(PermissionDenied):
        organization_create(actor=admin_user, name="Mine", slug="mine")
    assert not Organization.objects.filter(slug="mine").exists()


def test_it_renames_an_organization_but_keeps_its_slug_from_an_administrator(admin_user, org):
    organization_update(actor=admin_user, organization=org, name="Riverside Care")
    event = last_event("organization.changed")
    assert (event.actor, event.data["fields"]) == (admin_user, ["name"])
    with pytest.raises(ValidationFailed) as caught:
        organization_update(actor=admin_user, organization=org, slug="elsewhere")
    assert "slug" in caught.value.fields
    org.refresh_from_db()
    assert (org.name, org.slug) == ("Riverside Care", "riverside")


def test_it_hides_another_organization_from_an_administrator(admin_user, other_org, other_org_clinic):
    with pytest.raises(NotFound):
        organization_update(actor=admin_user, organization=other_org, name="Taken over")
    with pytest.raises(NotFound):
        clinic_create(actor=admin_user, organization=other_org, name="Annex", code="annex")
    with pytest.raises(NotFound):
        clinic_update(actor=admin_user, clinic=other_org_clinic, name="Annex")
    with pytest.raises(NotFound):
        department_create(actor=admin_user, clinic=other_org_clinic, name="Eyes", code="eye")


def test_it_creates_and_updates_a_clinic_with_audit_events(admin_user, org):
    clinic = clinic_create(actor=admin_user, organization=org, name="South", code="south", time_zone="UTC")
    assert last_event("clinic.created").organization_id == org.pk
    clinic_update(actor=admin_user, clinic=clinic, cancellation_cutoff_minutes=30, name="South wing")
    assert last_event("clinic.changed").data == {
        "fields": ["cancellation_cutoff_minutes", "name"],
        "changes": {
            "cancellation_cutoff_minutes": {"before": 120, "after": 30},
            "name": {"before": "South", "after": "South wing"},
        },
    }


def test_it_refuses_a_duplicate_clinic_code_naming_the_field(admin_user, clinic):
    with pytest.raises(ValidationFailed) as caught:
        clinic_create(actor=admin_user, organization=clinic.organization, name="Again", code=clinic.code)
    assert caught.value.fields
    assert Clinic.objects.filter(code=clinic.code).count() == 1


def test_it_refuses_an_unknown_time_zone(admin_user, clinic):
    with pytest.raises(ValidationFailed) as caught:
        clinic_update(actor=admin_user, clinic=clinic, time_zone="Mars/Olympus")
    assert "time_zone" in caught.value.fields


def test_it_creates_renames_and_closes_a_department(admin_user, clinic):
    department = department_create(actor=admin_user, clinic=clinic, name="Eyes", code="eye")
    department_update(actor=admin_user, department=department, name="Ophthalmology", is_active=False)
    event = last_event("department.changed")
    assert event.data["fields"] == ["is_active", "name"]
    assert Department.objects.get(pk=department.pk).is_active is False


# The clinic's time zone -------------------------------------------------------------------------------


@pytest.fixture
def planned(admin_user, doctor, department):
    """A 09:00-10:00 session every Wednesday at the clinic (Europe/London), planned into slots."""
    availability_rule_create(
        actor=admin_user,
        doctor=doctor,
        department=department,
        weekday=2,
        start_time=dt.time(9),
        end_time=dt.time(10),
        slot_minutes=30,
    )
    return department.clinic


def local_starts(clinic: Clinic, zone: str) -> set[str]:
    starts = Slot.objects.filter(clinic=clinic, is_active=True, start__gt=timezone.now())
    return {f"{s.start.astimezone(zoneinfo.ZoneInfo(zone)):%H:%M}" for s in starts}


def test_it_replans_future_slots_in_the_clinics_new_time_zone(admin_user, planned):
    assert local_starts(planned, "Europe/London") == {"09:00", "09:30"}
    clinic_update(actor=admin_user, clinic=planned, time_zone="Asia/Tokyo")
    assert local_starts(planned, "Asia/Tokyo") == {"09:00", "09:30"}
    assert Slot.objects.filter(clinic=planned, is_active=True).exists()
    event = last_event("clinic.changed")
    assert event.data["time_zone"] == {"from": "Europe/London", "to": "Asia/Tokyo"}
    # The old zone's empty slots are gone, not left behind closed.
    assert set(Slot.objects.filter(clinic=planned).values_list("is_active", flat=True)) == {True}


def test_it_refuses_a_new_time_zone_while_booked_future_appointments_exist(
    admin_user, planned, patient, book
):
    before = set(Slot.objects.filter(clinic=planned).values_list("pk", "start", "is_active"))
    book(patient, Slot.objects.filter(clinic=planned, start__gt=timezone.now()).earliest("start"))
    with pytest.raises(ValidationFailed) as caught:
        clinic_update(actor=admin_user, clinic=planned, time_zone="Asia/Tokyo", name="Renamed")
    assert "1 booked future appointment" in caught.value.fields["time_zone"][0]
    planned.refresh_from_db()
    assert (planned.time_zone, planned.name) == ("Europe/London", "Riverside Central")
    assert set(Slot.objects.filter(clinic=planned).values_list("pk", "start", "is_active")) == before
    assert not AuditEvent.objects.filter(action="clinic.changed").exists()


def test_the_admin_changes_a_time_zone_and_shows_a_refusal_beside_the_field(
    client, admin_user, planned, patient, book
):
    client.force_login(admin_user)
    url = reverse("admin:core_clinic_change", args=[planned.pk])
    body = {
        "name": planned.name,
        "code": planned.code,
        "time_zone": "Asia/Tokyo",
        "cancellation_cutoff_minutes": "120",
        "is_active": "on",
    }
    book(patient, Slot.objects.filter(clinic=planned, start__gt=timezone.now()).earliest("start"))
    refused = client.post(url, body)
    assert refused.status_code == 200
    assert "booked future appointment" in str(refused.context["adminform"].form.errors["time_zone"])
    planned.appointments.update(status="cancelled", seat=None)
    Slot.objects.filter(clinic=planned).update(booked_count=0)
    assert client.post(url, body).status_code == 302
    planned.refresh_from_db()
    assert planned.time_zone == "Asia/Tokyo"
    assert last_event("clinic.changed").actor == admin_user


def test_the_admin_adds_a_clinic_and_a_department_through_the_services(client, admin_user, org):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:core_clinic_add"),
        {"name": "East", "code": "east", "time_zone": "UTC", "cancellation_cutoff_minutes": "60"},
    )
    assert response.status_code == 302
    clinic = Clinic.objects.get(code="east")
    assert last_event("clinic.created").object_id == str(clinic.pk)
    response = client.post(
        reverse("admin:core_department_add"), {"clinic": clinic.pk, "name": "Skin", "code": "skin"}
    )
    assert response.status_code == 302
    assert last_event("department.created").actor == admin_user
