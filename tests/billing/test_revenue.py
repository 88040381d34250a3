"""Revenue per day in analytics (page and CSV): money taken less refunds, per clinic-local day."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from billing.services import payment_record, refund_issue
from tests.conftest import CLINIC_ZONE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


@pytest.fixture
def takings(invoice, fee, check_in, staff_user, other_patient):
    """Yesterday 23:30 in London 10.10 cash; today 20.20 card and 5.00 cash, 1.25 refunded."""
    today = timezone.localdate(timezone.now(), timezone=CLINIC_ZONE)
    yesterday = today - dt.timedelta(days=1)
    with time_machine.travel(dt.datetime.combine(yesterday, dt.time(23, 30), tzinfo=CLINIC_ZONE), tick=False):
        payment_record(actor=staff_user, invoice=invoice, method="cash", amount="10.10")
    payment_record(actor=staff_user, invoice=invoice, method="card", amount="20.20", terminal_reference="T-7")
    second = check_in(other_patient).invoices.get()
    payment_record(actor=staff_user, invoice=second, method="cash", amount="5.00")
    refund_issue(actor=staff_user, invoice=second, reason="Goodwill", amount="1.25")
    return {"date_from": yesterday.isoformat(), "date_to": today.isoformat()}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_analytics_page_shows_revenue_per_clinic_day(takings, admin_user):
    page = signed_in(admin_user).get("/analytics/", takings)

    assert page.status_code == 200
    revenue = next(t for t in page.context["tables"] if t["key"] == "revenue")
    assert revenue["title"] == "Revenue per day"
    assert [[str(v) for v in row] for row in revenue["rows"]] == [
        [takings["date_from"], "GBP", "1", "10.10", "0.00", "10.10"],
        [takings["date_to"], "GBP", "2", "25.20", "1.25", "23.95"],
    ]


def test_the_revenue_csv_adds_up_to_the_cent(takings, staff_user):
    response = signed_in(staff_user).get("/analytics/export/revenue.csv", takings)

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["date"], r["received"], r["refunded"], r["net"]) for r in rows] == [
        (takings["date_from"], "10.10", "0.00", "10.10"),
        (takings["date_to"], "25.20", "1.25", "23.95"),
    ]


def test_doctors_see_no_revenue(takings, doctor):
    client = signed_in(doctor.user)

    page = client.get("/analytics/", takings)

    assert page.status_code == 200
    assert "revenue" not in [t["key"] for t in page.context["tables"]]
    assert client.get("/analytics/export/revenue.csv", takings).status_code == 403


def test_another_organization_sees_none_of_it(takings, other_org_user, other_org_clinic):
    response = signed_in(other_org_user).get("/analytics/export/revenue.csv", takings)

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["received"] for r in rows} == {"0.00"}
