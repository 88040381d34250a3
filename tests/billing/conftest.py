"""Billing fixtures: a clinic with fees, and visits checked in at its desk today."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.services import billing_settings_set, fee_save
from scheduling.services import appointment_check_in
from tests.scheduling.queue_helpers import booked


@pytest.fixture
def fee(admin_user, department):
    """General medicine's fee for any visit with any doctor: 45.30 (cents that floats get wrong)."""
    return fee_save(
        actor=admin_user, department=department, description="Consultation", amount=Decimal("45.30")
    )


@pytest.fixture
def check_in(committed, staff_user, doctor, department):
    """check_in(patient=None, at_doctor=doctor) -> an appointment checked in now, its events run (so the
    invoice is raised where the clinic raises it at check-in)."""

    def run(patient=None, at_doctor=None):
        appointment = booked(staff_user, at_doctor or doctor, department, patient=patient)
        with committed():
            return appointment_check_in(actor=staff_user, appointment=appointment)

    return run


@pytest.fixture
def invoice(daytime, fee, check_in, patient):
    """Ada's invoice for today's visit, raised at check-in: 45.30 owed."""
    return check_in(patient).invoices.get()


@pytest.fixture
def set_billing(admin_user, clinic):
    def run(**fields):
        return billing_settings_set(actor=admin_user, clinic=clinic, **fields)

    return run
