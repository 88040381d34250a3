import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import assert_error
from tests.factories import ClinicFactory, DepartmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def names(response):
    assert response.status_code == 200, response.content
    return {row["name"] for row in response.json()["results"]}


def query_count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


# Organizations


def test_it_shows_a_user_their_own_organization_only(api_as, admin_user, other_org):
    response = api_as(admin_user).get("/api/v1/organizations/")

    assert names(response) == {"Riverside Health"}
    assert response.json()["results"][0]["slug"] == "riverside"


def test_it_hides_other_tenants_organizations(api_as, staff_user, other_org):
    response = api_as(staff_user).get(f"/api/v1/organizations/{other_org.pk}/")

    assert_error(response, 404, "not_found")


def test_it_shows_every_organization_to_a_superuser(api_as, org, other_org):
    root = UserFactory(username="root", is_superuser=True, organization=None)

    assert names(api_as(root).get("/api/v1/organizations/")) == {"Riverside Health", "Hillside Care"}


def test_it_refuses_to_create_organizations_over_the_api(api_as, admin_user):
    response = api_as(admin_user).post("/api/v1/organizations/", {"name": "New", "slug": "new"})

    assert response.status_code == 405


# Clinics


def test_it_shows_an_admin_every_clinic_of_the_organization(
    api_as, admin_user, clinic, other_clinic, other_org_clinic
):
    response = api_as(admin_user).get("/api/v1/clinics/")

    assert names(response) == {"Riverside Central", "Riverside North"}
    north = next(row for row in response.json()["results"] if row["name"] == "Riverside North")
    assert north["time_zone"] == "Europe/Paris"
    assert north["organization"] == other_clinic.organization_id


def test_it_shows_staff_only_the_clinics_they_work_at(api_as, staff_user, clinic, other_clinic):
    assert names(api_as(staff_user).get("/api/v1/clinics/")) == {"Riverside Central"}


def test_it_hides_clinics_a_staff_member_does_not_work_at(api_as, staff_user, other_clinic, other_org_clinic):
    client = api_as(staff_user)

    assert client.get(f"/api/v1/clinics/{other_clinic.pk}/").status_code == 404
    assert client.get(f"/api/v1/clinics/{other_org_clinic.pk}/").status_code == 404


def test_it_shows_patients_the_active_clinics_of_their_organization(
    api_as, patient, org, clinic, other_org_clinic
):
    ClinicFactory(organization=org, name="Closed Annex", is_active=False)

    assert names(api_as(patient.user).get("/api/v1/clinics/")) == {"Riverside Central"}


def test_it_pages_clinics(api_as, admin_user, org, clinic, other_clinic):
    ClinicFactory(organization=org, name="Riverside South")

    response = api_as(admin_user).get("/api/v1/clinics/?page_size=2")

    data = response.json()
    assert data["count"] == 3
    assert len(data["results"]) == 2
    assert "page=2" in data["next"]
    assert len(api_as(admin_user).get(data["next"]).json()["results"]) == 1


# Departments


def test_it_lists_departments_of_the_users_clinics(
    api_as, staff_user, department, other_clinic, other_org_department
):
    DepartmentFactory(clinic=other_clinic, name="Cardiology")

    response = api_as(staff_user).get("/api/v1/departments/")

    assert names(response) == {"General medicine"}
    assert response.json()["results"][0]["clinic_name"] == "Riverside Central"


def test_it_filters_departments_by_clinic(api_as, admin_user, department, other_clinic):
    DepartmentFactory(clinic=other_clinic, name="Cardiology")
    client = api_as(admin_user)

    assert names(client.get("/api/v1/departments/")) == {"General medicine", "Cardiology"}
    assert names(client.get(f"/api/v1/departments/?clinic={other_clinic.pk}")) == {"Cardiology"}


def test_it_finds_no_departments_of_another_tenants_clinic(
    api_as, admin_user, department, other_org_clinic, other_org_department
):
    response = api_as(admin_user).get(f"/api/v1/departments/?clinic={other_org_clinic.pk}")

    assert names(response) == set()


def test_it_refuses_a_clinic_filter_that_is_not_an_id(api_as, admin_user, department):
    response = api_as(admin_user).get("/api/v1/departments/?clinic=central")

    assert_error(response, 400, field="clinic")


def test_it_hides_other_tenants_departments(api_as, admin_user, other_org_department):
    response = api_as(admin_user).get(f"/api/v1/departments/{other_org_department.pk}/")

    assert response.status_code == 404


def test_it_shows_patients_only_active_departments(api_as, patient, department, clinic):
    DepartmentFactory(clinic=clinic, name="Closed ward", is_active=False)

    assert names(api_as(patient.user).get("/api/v1/departments/")) == {"General medicine"}


def test_it_lists_departments_without_a_query_per_row(
    api_as, django_assert_num_queries, org, staff_user, clinic
):
    for _ in range(3):
        DepartmentFactory(clinic=clinic)
    client = api_as(staff_user)
    expected = query_count(client, "/api/v1/departments/")

    for _ in range(17):
        DepartmentFactory(clinic=clinic)
    with django_assert_num_queries(expected):
        response = client.get("/api/v1/departments/")
    assert len(response.json()["results"]) == 20


def test_it_lists_clinics_without_a_query_per_row(api_as, django_assert_num_queries, org, admin_user):
    for _ in range(3):
        ClinicFactory(organization=org)
    client = api_as(admin_user)
    expected = query_count(client, "/api/v1/clinics/")

    for _ in range(17):
        ClinicFactory(organization=org)
    with django_assert_num_queries(expected):
        response = client.get("/api/v1/clinics/")
    assert len(response.json()["results"]) == 20
