"""Payments at the desk: partial payments add up to the cent, never beyond the balance; refunds follow
the clinic's cancellation policy; the cash-up totals each desk's day by method."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from billing.models import InvoiceStatus, Payment
from billing.selectors import cash_up, outstanding_for
from billing.services import payment_record, refund_issue
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent
from scheduling.services import appointment_cancel
from tests.conftest import CLINIC_ZONE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def pay(invoice, actor, amount, method="cash", **kwargs):
    return payment_record(actor=actor, invoice=invoice, method=method, amount=amount, **kwargs)


def test_partial_payments_add_up_to_the_cent(invoice, staff_user):
    pay(invoice, staff_user, "0.10")
    pay(invoice, staff_user, "0.20", method="card", terminal_reference="T-0001")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.balance) == (
        InvoiceStatus.PARTIALLY_PAID,
        Decimal("0.30"),
        Decimal("45.00"),
    )

    pay(invoice, staff_user, "45.00", method="insurance", insurer="Bupa", claim_reference="CLM-77")

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.balance) == (
        InvoiceStatus.PAID,
        Decimal("45.30"),
        Decimal("0.00"),
    )
    assert sum(Payment.objects.values_list("amount", flat=True)) == Decimal("45.30")
    assert AuditEvent.objects.filter(action="payment.recorded").count() == 3


def test_it_refuses_more_than_the_balance_naming_amount(invoice, staff_user):
    pay(invoice, staff_user, "40.00")

    with pytest.raises(Conflict) as refused:
        pay(invoice, staff_user, "5.31")

    assert refused.value.code == "more_than_balance"
    assert "amount" in refused.value.fields
    assert "5.30" in refused.value.fields["amount"][0]
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("amount", [0.1, "-1.00", "0", "1.005", "ten", "NaN", "Infinity", "10000000000.00"])
def test_it_refuses_amounts_that_are_not_money(invoice, staff_user, amount):
    with pytest.raises(ValidationFailed) as refused:
        pay(invoice, staff_user, amount)

    assert set(refused.value.fields) == {"amount"}
    assert not Payment.objects.exists()


def test_a_card_payment_needs_the_terminal_reference_and_insurance_its_claim(invoice, staff_user):
    with pytest.raises(ValidationFailed) as card:
        pay(invoice, staff_user, "5.00", method="card")
    with pytest.raises(ValidationFailed) as insurance:
        pay(invoice, staff_user, "5.00", method="insurance", insurer=" ")
    with pytest.raises(ValidationFailed) as cheque:
        pay(invoice, staff_user, "5.00", method="cheque")

    assert set(card.value.fields) == {"terminal_reference"}
    assert set(insurance.value.fields) == {"insurer", "claim_reference"}
    assert set(cheque.value.fields) == {"method"}
    assert not Payment.objects.exists()


def test_only_the_clinics_desk_takes_payments(invoice, doctor, patient, other_clinic_staff, other_org_user):
    with pytest.raises(PermissionDenied):
        pay(invoice, doctor.user, "5.00")
    with pytest.raises(PermissionDenied):
        pay(invoice, patient.user, "5.00")
    for outsider in (other_clinic_staff, other_org_user):
        with pytest.raises(NotFound):
            pay(invoice, outsider, "5.00")
    assert not Payment.objects.exists()


def test_a_paid_invoice_takes_no_more(invoice, staff_user):
    pay(invoice, staff_user, "45.30")

    with pytest.raises(Conflict) as refused:
        pay(invoice, staff_user, "0.01")
    assert refused.value.code == "more_than_balance"
    assert refused.value.fields == {"amount": ["At most 0.00 (the balance)."]}


def test_the_patient_owes_the_balance(invoice, staff_user, patient):
    assert outstanding_for(patient) == {"GBP": Decimal("45.30")}
    pay(invoice, staff_user, "20.15")
    assert outstanding_for(patient) == {"GBP": Decimal("25.15")}


def cancel(appointment, actor, committed):
    with committed():
        return appointment_cancel(actor=actor, appointment=appointment, reason="Could not stay")


def test_a_cancellation_before_the_cut_off_refunds_the_policys_share(
    invoice, staff_user, set_billing, committed
):
    set_billing(refund_percent_before_cutoff="90")
    pay(invoice, staff_user, "45.30", method="card", terminal_reference="T-9")
    appointment = invoice.appointment
    # Checked in minutes before the start, and cancelled there: before a one-minute cut-off.
    appointment.clinic.cancellation_cutoff_minutes = 1
    appointment.clinic.save(update_fields=["cancellation_cutoff_minutes"])
    cancel(appointment, staff_user, committed)

    with pytest.raises(Conflict) as too_much:
        refund_issue(actor=staff_user, invoice=invoice, reason="Cancelled", amount="40.78")
    refund = refund_issue(actor=staff_user, invoice=invoice, reason="Cancelled")

    assert too_much.value.code == "more_than_refundable"
    assert "amount" in too_much.value.fields
    assert (refund.amount, refund.method) == (Decimal("40.77"), "card")  # 90% of 45.30 = 40.77
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_refunded, invoice.balance) == (
        InvoiceStatus.REFUNDED,
        Decimal("40.77"),
        Decimal("0.00"),
    )
    assert AuditEvent.objects.get(action="refund.issued").data["amount"] == "40.77"


def test_a_cancellation_after_the_cut_off_refunds_what_the_clinic_set(
    invoice, staff_user, set_billing, committed
):
    set_billing(refund_percent_after_cutoff="25")
    pay(invoice, staff_user, "20.00")
    cancel(invoice.appointment, staff_user, committed)  # within the default 120 minutes: after the cut-off

    refund = refund_issue(actor=staff_user, invoice=invoice, reason="Late cancellation")

    assert refund.amount == Decimal("5.00")
    with pytest.raises(Conflict):
        refund_issue(actor=staff_user, invoice=invoice, reason="Again", amount="0.01")


def test_nothing_goes_back_after_the_cut_off_by_default(invoice, staff_user, committed):
    pay(invoice, staff_user, "45.30")
    cancel(invoice.appointment, staff_user, committed)

    with pytest.raises(Conflict) as refused:
        refund_issue(actor=staff_user, invoice=invoice, reason="Asked")
    assert refused.value.code == "more_than_refundable"


def test_a_refund_needs_a_reason(invoice, staff_user):
    pay(invoice, staff_user, "45.30")
    with pytest.raises(ValidationFailed) as refused:
        refund_issue(actor=staff_user, invoice=invoice, reason=" ")
    assert set(refused.value.fields) == {"reason"}


def test_the_cash_up_totals_each_desks_day_by_method(
    fee, check_in, staff_user, admin_user, clinic, patient, other_patient
):
    first = check_in(patient).invoices.get()
    second = check_in(other_patient).invoices.get()
    today = timezone.localdate(timezone.now(), timezone=CLINIC_ZONE)
    pay(first, staff_user, "10.10")
    pay(first, staff_user, "20.20")
    pay(first, staff_user, "15.00", method="card", terminal_reference="T-1")
    pay(
        second, admin_user, "45.30", method="insurance", insurer="Aviva", claim_reference="C-1"
    )  # another desk
    refund_issue(actor=staff_user, invoice=first, reason="Overcharged", amount="0.30", method="cash")
    # Yesterday evening in London is not today.
    yesterday = dt.datetime.combine(today, dt.time(23, 30), tzinfo=CLINIC_ZONE) - dt.timedelta(days=1)
    third = check_in().invoices.get()
    with time_machine.travel(yesterday, tick=False):
        pay(third, staff_user, "1.00")

    mine = cash_up(clinic=clinic, user=staff_user, day=today)

    totals = {m.method: (m.received, m.refunded, m.net, m.payments) for m in mine.methods}
    assert totals == {
        "cash": (Decimal("30.30"), Decimal("0.30"), Decimal("30.00"), 2),
        "card": (Decimal("15.00"), Decimal("0.00"), Decimal("15.00"), 1),
        "insurance": (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), 0),
    }
    assert (mine.received, mine.refunded, mine.net, mine.cash_in_drawer) == (
        Decimal("45.30"),
        Decimal("0.30"),
        Decimal("45.00"),
        Decimal("30.00"),
    )
    assert cash_up(clinic=clinic, user=admin_user, day=today).received == Decimal("45.30")
    assert cash_up(clinic=clinic, user=staff_user, day=today - dt.timedelta(days=1)).received == Decimal(
        "1.00"
    )
