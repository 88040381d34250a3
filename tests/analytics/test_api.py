"""/api/v1/analytics/...: answers, CSV, and every refusal (tenancy, roles, bad input)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from tests.conftest import assert_error

from .conftest import MON, TUE

pytestmark = pytest.mark.django_db

ENDPOINTS = ["analytics-daily", "analytics-news2-daily", "analytics-care-notes-daily"]
RANGE = {"date_from": MON.isoformat(), "date_to": TUE.isoformat()}


def get(client, name, **params):
    return client.get(reverse(name), {**RANGE, **params})


def test_it_answers_the_daily_statistics_of_the_organization(world, admin_user, api_as):
    response = get(api_as(admin_user), "analytics-daily")

    assert response.status_code == 200
    body = response.json()
    assert body["clinics"] == sorted([world.clinic.pk, world.other_clinic.pk])
    assert (body["date_from"], body["date_to"]) == (MON.isoformat(), TUE.isoformat())
    mon, tue = body["days"]
    assert (mon["date"], mon["appointments"], mon["wait_p90_minutes"], mon["new_patients"]) == (
        "2026-01-12",
        6,
        27.0,
        3,
    )
    assert (tue["appointments"], tue["utilization"]) == (3, 0.75)
    assert body["summary"]["appointments"] == 9
    assert "wait_seconds" not in mon  # internal sums stay internal


def test_it_accepts_several_clinics(world, admin_user, api_as):
    client = api_as(admin_user)
    repeated = client.get(
        reverse("analytics-daily") + f"?clinic={world.clinic.pk}&clinic={world.other_clinic.pk}"
    )
    commas = get(client, "analytics-daily", clinic=f"{world.clinic.pk},{world.other_clinic.pk}")

    assert repeated.status_code == commas.status_code == 200
    assert (
        repeated.json()["clinics"]
        == commas.json()["clinics"]
        == sorted([world.clinic.pk, world.other_clinic.pk])
    )


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_hides_another_organizations_clinic(name, world, admin_user, api_as):
    response = get(api_as(admin_user), name, clinic=world.other_org_clinic.pk)

    assert assert_error(response, 404)["fields"] == {"clinic": ["Unknown clinic."]}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_hides_another_organizations_department_and_doctor(
    name, world, admin_user, api_as, other_org_department, other_org_doctor
):
    client = api_as(admin_user)

    department = get(client, name, department=other_org_department.pk)
    doctor = get(client, name, doctor=other_org_doctor.pk)

    assert_error(department, 404, field="department")
    assert_error(doctor, 404, field="doctor")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_staff_see_only_their_clinics(name, world, clinical, staff_user, api_as):
    client = api_as(staff_user)

    own = get(client, name)
    other = get(client, name, clinic=world.other_clinic.pk)
    other_department = get(client, name, department=world.north_department.pk)
    other_doctor = get(client, name, doctor=world.north_doctor.pk)

    assert own.status_code == 200
    assert own.json()["clinics"] == [world.clinic.pk]
    assert other.status_code == other_department.status_code == other_doctor.status_code == 404


def test_staff_figures_leave_out_other_clinics(world, clinical, staff_user, api_as):
    client = api_as(staff_user)

    daily = get(client, "analytics-daily").json()["days"][0]
    news2 = get(client, "analytics-news2-daily").json()["days"][0]
    notes = get(client, "analytics-care-notes-daily").json()["days"][0]

    assert (daily["appointments"], news2["total"], notes["total"]) == (5, 3, 3)


@pytest.mark.parametrize("name", ENDPOINTS)
def test_doctors_see_only_their_own_figures(name, world, api_as):
    client = api_as(world.doctor.user)

    own = get(client, name)
    someone_else = get(client, name, doctor=world.north_doctor.pk)

    assert own.status_code == 200
    assert own.json()["doctor"] == world.doctor.pk
    assert someone_else.status_code == 404


def test_a_doctors_figures_are_their_appointments(world, clinical, api_as):
    body = get(api_as(world.north_doctor.user), "analytics-daily").json()

    assert body["clinics"] == [world.other_clinic.pk]
    assert body["days"][0]["appointments"] == 1


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_refuses_patients(name, world, patient, api_as):
    response = get(api_as(patient.user), name)

    assert response.status_code == 403


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_refuses_anonymous_callers(name, api):
    assert get(api, name).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "12/01/2026"}, "date_from"),
        ({"date_from": "2026-01-14", "date_to": "2026-01-12"}, "date_from"),
        ({"date_from": "2020-01-01", "date_to": "2026-01-12"}, "date_from"),
        ({"clinic": "abc"}, "clinic"),
        ({"department": "1.5"}, "department"),
    ],
)
def test_it_names_the_bad_parameter(params, field, world, admin_user, api_as):
    response = api_as(admin_user).get(reverse("analytics-daily"), params)

    error = assert_error(response, 400)
    assert field in {key.split(".")[0] for key in error["fields"]}


def test_it_exports_the_days_as_csv(world, admin_user, api_as):
    response = get(api_as(admin_user), "analytics-daily", format="csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["date"] for row in rows] == ["2026-01-12", "2026-01-13"]
    assert (rows[0]["appointments"], rows[0]["wait_p90_minutes"], rows[0]["utilization"]) == (
        "6",
        "27.0",
        "1.0",
    )


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("analytics-news2-daily", ["date", "total", "low", "low_medium", "medium", "high"]),
        (
            "analytics-care-notes-daily",
            ["date", "total", "observation", "medication", "hygiene", "nutrition", "incident", "other"],
        ),
    ],
)
def test_it_exports_news2_and_care_notes_as_csv(name, header, world, clinical, admin_user, api_as):
    response = get(api_as(admin_user), name, format="csv")

    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == header
    assert lines[1][:2] == ["2026-01-12", "4"]


def test_csv_errors_are_csv_too(world, admin_user, api_as):
    response = get(api_as(admin_user), "analytics-daily", format="csv", clinic=world.other_org_clinic.pk)

    assert response.status_code == 404
    assert response.content.decode().splitlines()[0] == "code,message"
