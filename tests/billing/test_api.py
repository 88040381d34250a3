"""The invoices API: staff list, read and take payments in their clinics; patients read their own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Payment
from billing.services import payment_record
from tests.conftest import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def url(invoice, tail=""):
    return f"/api/v1/invoices/{invoice.pk}/{tail}"


def test_staff_list_and_read_their_clinics_invoices(api_as, invoice, staff_user, patient):
    listed = api_as(staff_user).get("/api/v1/invoices/")
    shown = api_as(staff_user).get(url(invoice))

    assert listed.status_code == 200
    assert [row["number"] for row in listed.json()["results"]] == [invoice.number]
    body = shown.json()
    assert (body["total"], body["balance"], body["status"], body["currency"]) == (
        "45.30",
        "45.30",
        "issued",
        "GBP",
    )
    assert (body["patient"], body["patient_mrn"]) == (patient.pk, patient.mrn)
    assert body["lines"] == [
        {"description": "Consultation (first visit)", "quantity": 1, "unit_price": "45.30", "amount": "45.30"}
    ]


def test_a_payment_posted_at_the_desk_lowers_the_balance(api_as, invoice, staff_user):
    client = api_as(staff_user)

    paid = client.post(
        url(invoice, "payments/"), {"method": "card", "amount": "20.15", "terminal_reference": "T-42"}
    )

    assert paid.status_code == 201, paid.content
    assert (paid.json()["amount"], paid.json()["received_by"]) == ("20.15", staff_user.pk)
    assert client.get(url(invoice)).json()["balance"] == "25.15"


@pytest.mark.parametrize("amount", ["abc", "-5.00", "0", "1.234", None])
def test_a_bad_amount_is_refused_naming_amount(api_as, invoice, staff_user, amount):
    response = api_as(staff_user).post(url(invoice, "payments/"), {"method": "cash", "amount": amount})

    assert_error(response, 400, fields=["amount"])
    assert not Payment.objects.exists()


def test_a_card_payment_without_its_reference_is_refused_naming_it(api_as, invoice, staff_user):
    response = api_as(staff_user).post(url(invoice, "payments/"), {"method": "card", "amount": "5.00"})

    assert_error(response, 400, fields=["terminal_reference"])


def test_more_than_the_balance_is_a_conflict_naming_amount(api_as, invoice, staff_user):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="45.00")

    response = api_as(staff_user).post(url(invoice, "payments/"), {"method": "cash", "amount": "0.31"})

    error = assert_error(response, 409, "more_than_balance", fields=["amount"])
    assert "0.30" in error["fields"]["amount"][0]
    assert Payment.objects.count() == 1


def test_another_clinics_or_organizations_invoice_is_not_found(
    api_as, invoice, other_clinic_staff, other_org_user
):
    for outsider in (other_clinic_staff, other_org_user):
        client = api_as(outsider)
        assert_error(client.get(url(invoice)), 404)
        assert_error(client.post(url(invoice, "payments/"), {"method": "cash", "amount": "1.00"}), 404)
        assert client.get("/api/v1/invoices/").json()["results"] == []
    assert not Payment.objects.exists()


def test_patients_and_doctors_are_refused_the_staff_endpoints(api_as, invoice, patient, doctor):
    for person in (patient.user, doctor.user):
        client = api_as(person)
        assert_error(client.get("/api/v1/invoices/"), 403)
        assert_error(client.get(url(invoice)), 403)
        assert_error(client.post(url(invoice, "payments/"), {"method": "cash", "amount": "1.00"}), 403)
    assert not Payment.objects.exists()


def test_a_patient_reads_their_own_invoices_only(
    api_as, invoice, fee, check_in, patient, other_patient, staff_user
):
    check_in(other_patient)  # Grace's invoice: not Ada's to see
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="10.00")

    mine = api_as(patient.user).get("/api/v1/me/invoices/")

    assert mine.status_code == 200
    rows = mine.json()["results"]
    assert [(r["number"], r["balance"], r["amount_paid"]) for r in rows] == [
        (invoice.number, "35.30", "10.00")
    ]
    assert "received_by" not in rows[0]["payments"][0]
    assert_error(api_as(staff_user).get("/api/v1/me/invoices/"), 403)


def test_a_refund_through_the_api_follows_the_policy(api_as, invoice, staff_user):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="45.30")
    client = api_as(staff_user)

    refused = client.post(url(invoice, "refunds/"), {"reason": "", "amount": "1.00"})
    refunded = client.post(url(invoice, "refunds/"), {"reason": "Charged twice", "amount": "5.30"})

    assert_error(refused, 400, fields=["reason"])
    assert refunded.status_code == 201, refunded.content
    assert Decimal(refunded.json()["amount"]) == Decimal("5.30")
    assert client.get(url(invoice)).json()["status"] == "refunded"


def test_a_retried_payment_with_the_same_key_is_taken_once(api_as, invoice, staff_user):
    client = api_as(staff_user)
    body = {"method": "cash", "amount": "10.00"}

    first = client.post(url(invoice, "payments/"), body, HTTP_IDEMPOTENCY_KEY="pay-1")
    retry = client.post(url(invoice, "payments/"), body, HTTP_IDEMPOTENCY_KEY="pay-1")
    other = client.post(url(invoice, "payments/"), {**body, "amount": "11.00"}, HTTP_IDEMPOTENCY_KEY="pay-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert_error(other, 422)
    assert Payment.objects.count() == 1
    assert client.get(url(invoice)).json()["balance"] == "35.30"
