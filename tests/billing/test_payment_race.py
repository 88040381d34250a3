"""Two desks paying the same invoice at once, with real threads on MariaDB: exactly the balance is paid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Invoice, Payment
from billing.services import payment_record
from opd.core.errors import Conflict
from tests.factories import UserFactory
from tests.scheduling.test_booking_concurrency import run_at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


def test_two_desks_paying_the_balance_at_once_pay_it_once(invoice, staff_user, org, clinic):
    other_desk = UserFactory(role="staff", organization=org, is_staff=True, clinics=[clinic])
    desks = [staff_user, other_desk]

    outcomes = run_at_once(
        2,
        lambda i: payment_record(
            actor=desks[i], invoice=Invoice.objects.get(pk=invoice.pk), method="cash", amount="45.30"
        ),
    )

    paid = [o for o in outcomes if isinstance(o, Payment)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(paid) == 1, outcomes
    assert len(refused) == 1, outcomes
    assert "amount" in refused[0].fields
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.status) == (Decimal("45.30"), "paid")
    assert sum(Payment.objects.values_list("amount", flat=True)) == Decimal("45.30")


def test_many_desks_paying_parts_at_once_never_overpay(invoice, staff_user, org, clinic):
    desks = [UserFactory(role="staff", organization=org, is_staff=True, clinics=[clinic]) for _ in range(8)]

    # 8 x 10.00 against 45.30: four fit, the rest are refused (the balance is then 5.30).
    outcomes = run_at_once(
        8,
        lambda i: payment_record(
            actor=desks[i], invoice=Invoice.objects.get(pk=invoice.pk), method="cash", amount="10.00"
        ),
    )

    assert sum(isinstance(o, Payment) for o in outcomes) == 4, outcomes
    assert sum(isinstance(o, Conflict) for o in outcomes) == 4, outcomes
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("40.00")
    assert sum(Payment.objects.values_list("amount", flat=True)) == Decimal("40.00")
