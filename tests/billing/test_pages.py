"""The desk's money in the admin and on pages: pay, refund and void from the invoice, the receipt, the
cash-up, and the patient's "What I owe"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from billing.models import FeeSchedule, Payment
from billing.services import payment_record
from tests.factories import PatientFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_desk_records_a_payment_from_the_invoice_page(invoice, staff_user):
    desk = signed_in(staff_user)
    page = desk.get(f"/admin/billing/invoice/{invoice.pk}/change/")
    assert page.status_code == 200
    assert "Record payment" in page.text
    assert "£45.30" in page.text

    done = desk.post(
        f"/admin/billing/invoice/{invoice.pk}/pay/",
        {"method": "card", "amount": "45.30", "terminal_reference": "T-100"},
        follow=True,
    )

    assert "Recorded card £45.30" in done.text
    assert Payment.objects.get().terminal_reference == "T-100"


def test_the_admin_form_shows_the_refusal_beside_amount(invoice, staff_user):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="45.00")

    refused = signed_in(staff_user).post(
        f"/admin/billing/invoice/{invoice.pk}/pay/", {"method": "cash", "amount": "1.00"}
    )

    assert refused.status_code == 400
    assert refused.context["form"].errors["amount"] == ["At most 0.30 (the balance)."]
    assert Payment.objects.count() == 1


def test_the_admin_refunds_and_voids_through_the_services(invoice, fee, check_in, staff_user, other_patient):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="10.00")
    desk = signed_in(staff_user)

    desk.post(f"/admin/billing/invoice/{invoice.pk}/refund/", {"amount": "2.50", "reason": "Overcharged"})
    unpaid = check_in(other_patient).invoices.get()
    desk.post(f"/admin/billing/invoice/{unpaid.pk}/void/", {"reason": "Raised by mistake"})

    invoice.refresh_from_db()
    unpaid.refresh_from_db()
    assert (invoice.status, invoice.amount_refunded) == ("refunded", Decimal("2.50"))
    assert unpaid.status == "void"


def test_another_clinics_desk_cannot_open_or_pay_the_invoice(invoice, other_clinic_staff):
    desk = signed_in(other_clinic_staff)

    assert desk.get(f"/admin/billing/invoice/{invoice.pk}/change/").status_code == 404
    assert (
        desk.post(
            f"/admin/billing/invoice/{invoice.pk}/pay/", {"method": "cash", "amount": "1.00"}
        ).status_code
        == 404
    )
    assert not Payment.objects.exists()


def test_fees_are_saved_through_the_service(admin_user, department):
    signed_in(admin_user).post(
        "/admin/billing/feeschedule/add/",
        {
            "department": department.pk,
            "visit_type": "any",
            "description": "Consultation",
            "amount": "30.00",
            "is_active": "on",
        },
    )

    fee = FeeSchedule.objects.get()
    assert (fee.amount, fee.organization_id) == (Decimal("30.00"), department.clinic.organization_id)


def test_the_receipt_shows_lines_payments_and_balance(invoice, staff_user, patient):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="20.00")

    for person in (staff_user, patient.user):
        page = signed_in(person).get(f"/billing/invoices/{invoice.pk}/receipt/")
        assert page.status_code == 200
        assert invoice.number in page.text
        assert "Consultation (first visit)" in page.text
        assert "£20.00" in page.text
        assert "£25.30" in page.text  # still owed
        assert "Europe/London" in page.text


def test_the_receipt_is_not_found_for_anyone_else(invoice, other_patient, other_clinic_staff, doctor):
    for person in (other_patient.user, other_clinic_staff, doctor.user):
        assert signed_in(person).get(f"/billing/invoices/{invoice.pk}/receipt/").status_code == 404


def test_what_i_owe_lists_the_patients_invoices_and_balance(
    invoice, staff_user, patient, other_patient, check_in
):
    graces = check_in(other_patient).invoices.get()
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="5.30")

    page = signed_in(patient.user).get("/portal/bills/")

    assert page.status_code == 200
    assert "You owe <strong>£40.00</strong>" in page.text
    assert invoice.number in page.text
    assert graces.number not in page.text
    assert f"/billing/invoices/{invoice.pk}/receipt/" in page.text


def test_what_i_owe_says_nothing_is_owed(db, org):
    patient = PatientFactory(organization=org, user=UserFactory(role="patient", organization=org))

    page = signed_in(patient.user).get("/portal/bills/")

    assert "You owe nothing." in page.text
    assert "No invoices yet" in page.text


def test_the_cash_up_page_totals_the_desks_day(invoice, staff_user, clinic):
    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="10.10")
    payment_record(actor=staff_user, invoice=invoice, method="card", amount="20.20", terminal_reference="T-1")

    page = signed_in(staff_user).get("/billing/cash-up/")

    assert page.status_code == 200
    report = page.context["report"]
    assert (report.received, report.cash_in_drawer) == (Decimal("30.30"), Decimal("10.10"))
    assert "£30.30" in page.text
    assert "Europe/London" in page.text


def test_staff_read_only_their_own_cash_up(invoice, staff_user, admin_user, clinic):
    refused = signed_in(staff_user).get(
        "/billing/cash-up/", {"clinic": clinic.pk, "desk": admin_user.pk, "day": "2026-01-01"}
    )
    admins = signed_in(admin_user).get(
        "/billing/cash-up/", {"clinic": clinic.pk, "desk": staff_user.pk, "day": "2026-01-01"}
    )

    assert refused.status_code == 400
    assert "desk" in refused.context["form"].errors
    assert admins.status_code == 200


def test_patients_and_doctors_have_no_cash_up(patient, doctor):
    for person in (patient.user, doctor.user):
        assert signed_in(person).get("/billing/cash-up/").status_code == 403


def test_the_patients_admin_page_shows_what_they_owe(client, staff_user, invoice, patient):
    client.force_login(staff_user)

    body = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()

    assert 'id="patient-balance">Owes £45.30<' in body
