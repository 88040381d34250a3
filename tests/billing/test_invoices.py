"""Raising invoices from the fee schedule: when (the clinic's setting), how much (the most specific fee)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Invoice, InvoiceStatus
from billing.services import fee_save, invoice_raise, invoice_void
from opd.core import events
from opd.core.errors import Conflict, PermissionDenied
from opd.core.models import AuditEvent, OutboxEvent
from scheduling.services import appointment_cancel
from tests.consultations.factories import complete_visit
from tests.factories import DoctorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def test_it_raises_the_invoice_at_check_in_by_default(fee, check_in, patient):
    appointment = check_in(patient)

    invoice = appointment.invoices.get()
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.total == Decimal("45.30")
    assert invoice.currency == "GBP"
    assert invoice.number.startswith("INV-")
    assert invoice.patient_id == patient.pk
    assert [(line.description, line.amount) for line in invoice.lines.all()] == [
        ("Consultation (first visit)", Decimal("45.30"))
    ]
    assert AuditEvent.objects.filter(action="invoice.issued", object_id=str(invoice.pk)).count() == 1


def test_it_waits_for_completion_when_the_clinic_says_so(
    fee, check_in, set_billing, committed, doctor, patient
):
    set_billing(invoice_at="completion", currency="inr")

    appointment = check_in(patient)
    assert not appointment.invoices.exists()
    with committed():
        complete_visit(actor=doctor.user, appointment=appointment)  # opened and completed with its record

    invoice = appointment.invoices.get()
    assert (invoice.total, invoice.currency) == (Decimal("45.30"), "INR")


def test_it_charges_the_most_specific_fee(
    admin_user, fee, check_in, org, doctor, department, patient, other_patient
):
    colleague = DoctorFactory(user__organization=org, departments=[department])
    fee_save(actor=admin_user, department=department, doctor=doctor, description="Dr House", amount="80.00")
    fee_save(
        actor=admin_user,
        department=department,
        doctor=doctor,
        visit_type="follow_up",
        description="Dr House follow-up",
        amount="60.00",
    )
    fee_save(
        actor=admin_user, department=department, visit_type="new", description="New patient", amount="50.00"
    )

    assert check_in(patient).invoices.get().total == Decimal(
        "80.00"
    )  # the doctor's fee beats the new-visit fee
    assert check_in(other_patient, at_doctor=colleague).invoices.get().total == Decimal("50.00")


def test_it_charges_a_follow_up_after_a_completed_visit(
    admin_user, fee, check_in, committed, doctor, department, patient
):
    fee_save(
        actor=admin_user,
        department=department,
        visit_type="follow_up",
        description="Follow-up",
        amount="25.00",
    )
    first = check_in(patient)
    with committed():
        complete_visit(actor=doctor.user, appointment=first)

    second = check_in(patient)

    assert first.invoices.get().total == Decimal("45.30")
    assert [(line.description, line.amount) for line in second.invoices.get().lines.all()] == [
        ("Follow-up (follow-up)", Decimal("25.00"))
    ]


def test_it_raises_no_invoice_where_no_fee_applies(check_in, patient, staff_user):
    appointment = check_in(patient)

    assert not Invoice.objects.exists()
    with pytest.raises(Conflict) as refused:
        invoice_raise(actor=staff_user, appointment=appointment)
    assert refused.value.code == "no_fee"


def test_raising_twice_gives_the_same_invoice(invoice, staff_user):
    again = invoice_raise(actor=staff_user, appointment=invoice.appointment)

    assert again.pk == invoice.pk
    assert Invoice.objects.count() == 1


def test_it_numbers_invoices_one_after_another(fee, check_in, patient, other_patient):
    first = check_in(patient).invoices.get()
    second = check_in(other_patient).invoices.get()

    assert int(second.number[4:]) == int(first.number[4:]) + 1


def test_a_cancelled_visit_voids_its_unpaid_invoice(invoice, staff_user, committed):
    with committed():
        appointment_cancel(actor=staff_user, appointment=invoice.appointment, reason="Patient went home")

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert invoice.balance == Decimal("0.00")
    assert AuditEvent.objects.filter(action="invoice.voided", object_id=str(invoice.pk)).exists()


def test_it_refuses_to_void_an_invoice_with_payments(invoice, staff_user):
    from billing.services import payment_record

    payment_record(actor=staff_user, invoice=invoice, method="cash", amount="5.00")

    with pytest.raises(Conflict) as refused:
        invoice_void(actor=staff_user, invoice=invoice, reason="Mistake")
    assert refused.value.code == "has_payments"


def test_doctors_and_patients_do_not_raise_invoices(invoice, doctor, patient):
    for person in (doctor.user, patient.user):
        with pytest.raises(PermissionDenied):
            invoice_raise(actor=person, appointment=invoice.appointment)


def test_a_check_in_or_cancellation_event_delivered_twice_raises_or_voids_one_invoice_once(
    fee, check_in, staff_user, patient, committed
):
    # The outbox delivers at least once: the relay may deliver again what the change's process did.
    appointment = check_in(patient)
    checked_in = OutboxEvent.objects.get(event=events.QUEUE_CHANGED, payload__action="checked_in")
    assert events.deliver(checked_in.event, checked_in.payload) is None
    invoice = appointment.invoices.get()

    with committed():
        appointment_cancel(actor=staff_user, appointment=appointment, reason="Patient went home")
    cancelled = OutboxEvent.objects.get(event=events.APPOINTMENT_CANCELLED)
    assert events.deliver(cancelled.event, cancelled.payload) is None

    assert list(Invoice.objects.values_list("pk", "status")) == [(invoice.pk, InvoiceStatus.VOID)]
    assert AuditEvent.objects.filter(action="invoice.issued").count() == 1
    assert AuditEvent.objects.filter(action="invoice.voided", object_id=str(invoice.pk)).count() == 1
