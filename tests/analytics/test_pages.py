"""The analytics page: charts, tables, filters, CSV export of every table, and who may see it."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from .conftest import MON, TUE

pytestmark = pytest.mark.django_db

RANGE = {"date_from": MON.isoformat(), "date_to": TUE.isoformat()}


def test_it_shows_charts_and_tables(client, world, clinical, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("analytics:dashboard"), RANGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert "js/analytics.js" in page
    assert 'id="analytics-data"' in page
    for canvas in (
        "chart-status",
        "chart-wait",
        "chart-utilization",
        "chart-patients",
        "chart-news2",
        "chart-care-notes",
    ):
        assert f'id="{canvas}"' in page
    for title in ("Appointments per day", "NEWS2 bands seen per day", "Care notes per category per day"):
        assert title in page
    assert response.context["summary"]["appointments"] == 9
    daily = response.context["tables"][0]
    assert daily["rows"][0][:2] == ["2026-01-12", 6]


def test_it_links_a_csv_export_for_every_table(client, world, clinical, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("analytics:dashboard"), RANGE).content.decode()

    for table, expected_total in (("daily", "6"), ("news2", "4"), ("care-notes", "4")):
        url = reverse("analytics:export", args=[table])
        assert url in page
        response = client.get(url, RANGE)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert rows[0]["date"] == "2026-01-12"
        assert rows[0]["appointments" if table == "daily" else "total"] == expected_total


def test_staff_pick_only_their_clinics(client, world, staff_user):
    client.force_login(staff_user)

    mine = client.get(reverse("analytics:dashboard"), RANGE)
    theirs = client.get(reverse("analytics:dashboard"), {**RANGE, "clinic": world.other_clinic.pk})

    assert mine.context["summary"]["appointments"] == 8
    assert theirs.status_code == 200
    assert theirs.context["form"].errors["clinic"]
    assert "summary" not in theirs.context
    export = client.get(
        reverse("analytics:export", args=["daily"]), {**RANGE, "clinic": world.other_clinic.pk}
    )
    assert export.status_code == 400


def test_doctors_see_their_own_figures_without_a_doctor_filter(client, world):
    client.force_login(world.doctor.user)

    response = client.get(reverse("analytics:dashboard"), RANGE)

    assert response.status_code == 200
    assert "doctor" not in response.context["form"].fields
    assert response.context["summary"]["appointments"] == 8


def test_it_shows_range_errors_beside_the_field(client, world, admin_user):
    client.force_login(admin_user)

    response = client.get(
        reverse("analytics:dashboard"), {"date_from": "2020-01-01", "date_to": "2026-01-12"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["date_from"]


def test_it_refuses_patients(client, world, patient):
    client.force_login(patient.user)

    assert client.get(reverse("analytics:dashboard")).status_code == 403
    assert client.get(reverse("analytics:export", args=["daily"])).status_code == 403


def test_it_sends_strangers_to_sign_in(client):
    response = client.get(reverse("analytics:dashboard"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_the_navigation_links_it_for_admins(client, world, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("analytics:dashboard"), RANGE).content.decode()

    assert f'href="{reverse("analytics:dashboard")}"' in page


def test_it_says_which_dates_it_shows_when_none_were_chosen(client, world, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("analytics:dashboard"))

    page = response.content.decode()
    date_from, date_to = response.context["date_from"], response.context["date_to"]
    assert (
        f"Showing <strong>{date_from:%a %-d %b %Y}</strong> to <strong>{date_to:%a %-d %b %Y}</strong>"
        in page
    )
    assert "the default range" in page
    assert f'value="{date_from.isoformat()}"' in page  # the fields hold the range applied
    assert f'value="{date_to.isoformat()}"' in page


def test_it_says_the_chosen_range_without_calling_it_the_default(client, world, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("analytics:dashboard"), RANGE).content.decode()

    assert "Showing <strong>Mon 12 Jan 2026</strong> to <strong>Tue 13 Jan 2026</strong>" in page
    assert "the default range" not in page
