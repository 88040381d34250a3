"""Every write of money: raising, paying, refunding and voiding invoices, the fee schedule and the
clinic's billing settings. Each one is audited in the transaction that makes it.

Amounts are Decimal to the cent. A payment locks its invoice row (SELECT ... FOR UPDATE) and compares
with the balance under that lock, so two desks paying the same invoice at once can never overpay: the
second waits, then sees the first one's payment. The invoice's CHECK constraints are the backstop.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from opd.core.audit import audit, changes
from opd.core.db import next_in_sequence, retry_on_deadlock
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import Clinic, User
from opd.core.services import validate_model
from opd.core.tenancy import clinic_ids_for
from scheduling.models import Appointment, AppointmentStatus

from .models import (
    CENT,
    PAYABLE_STATUSES,
    BillingSettings,
    FeeSchedule,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    Refund,
    VisitType,
)
from .selectors import billing_settings_for, fee_for, visit_type_of

MAX_AMOUNT = Decimal("9999999999.99")  # what DecimalField(max_digits=12, decimal_places=2) holds
INVOICEABLE = (AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULTATION, AppointmentStatus.COMPLETED)
SETTINGS_FIELDS = ("currency", "invoice_at", "refund_percent_before_cutoff", "refund_percent_after_cutoff")
FEE_FIELDS = ("department", "doctor", "visit_type", "description", "amount", "is_active")


def money(value: Any, *, name: str = "amount", allow_zero: bool = False) -> Decimal:
    """`value` as Decimal cents, or ValidationFailed naming `name`. Floats are refused: 0.1 + 0.2 is not
    0.3 in binary, and money must add up to the cent."""
    if isinstance(value, float | bool):
        raise ValidationFailed("Give the amount as a decimal string.", fields={name: "Not a decimal amount."})
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed("The amount is not a number.", fields={name: "Enter an amount."}) from None
    if not amount.is_finite():
        raise ValidationFailed("The amount is not a number.", fields={name: "Enter an amount."})
    if amount != amount.quantize(CENT):
        raise ValidationFailed("Amounts are in whole cents.", fields={name: "At most two decimal places."})
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationFailed("The amount must be more than zero.", fields={name: "Must be more than zero."})
    if amount > MAX_AMOUNT:
        raise ValidationFailed("The amount is too large.", fields={name: "Too large."})
    return amount.quantize(CENT)


def _check_desk(actor: User | None, clinic_id: int) -> None:
    """Money is handled by admins and staff of the clinic (or the system, actor None)."""
    if actor is None:
        return
    if not actor.is_clinic_staff:
        raise PermissionDenied("Only the clinic's staff handle payments.")
    ids = clinic_ids_for(actor)
    if ids is not None and clinic_id not in ids:
        raise NotFound("No such invoice.")


def _lock(invoice: Invoice) -> Invoice:
    # A plain locking read of the one row (no select_related: on MariaDB that would lock the joined
    # rows too, e.g. the patient and the clinic, and make unrelated writers wait).
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


def _next_number(organization_id: int) -> str:
    return f"INV-{next_in_sequence(InvoiceSequence, organization_id=organization_id):06d}"


VISIT_WORDS: dict[str, str] = {VisitType.NEW: "first visit", VisitType.FOLLOW_UP: "follow-up"}


def _fee_description(fee: FeeSchedule, visit_type: str) -> str:
    return f"{fee.description} ({VISIT_WORDS.get(visit_type, 'visit')})"[:200]


@retry_on_deadlock
def invoice_raise(*, actor: User | None, appointment: Appointment, now: dt.datetime | None = None) -> Invoice:
    """Raise and issue the visit's invoice from the fee schedule; answer the live one if it exists.

    Refuses an appointment not (yet) seen at the desk (409 not_invoiceable) and a visit no fee covers
    (409 no_fee). Called after a check-in or a completion commits (billing.subscribers), and by staff."""
    _check_desk(actor, appointment.clinic_id)
    existing = Invoice.objects.filter(live_for_appointment=appointment.pk).first()
    if existing is not None:
        return existing
    if appointment.status not in INVOICEABLE:
        raise Conflict(
            f"An appointment that is {appointment.get_status_display().lower()} is not invoiced.",
            code="not_invoiceable",
        )
    fee = fee_for(appointment)
    if fee is None:
        raise Conflict("No fee in the schedule covers this visit.", code="no_fee")
    visit_type = visit_type_of(appointment)
    settings_row = billing_settings_for(appointment.clinic)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
                organization_id=appointment.organization_id,
                clinic_id=appointment.clinic_id,
                patient_id=appointment.patient_id,
                appointment=appointment,
                live_for_appointment=appointment.pk,
                number=_next_number(appointment.organization_id),
                currency=settings_row.currency,
                status=InvoiceStatus.ISSUED,
                total=fee.amount,
                issued_at=now,
                issued_by=actor,
            )
            InvoiceLine.objects.create(
                invoice=invoice,
                description=_fee_description(fee, visit_type),
                quantity=1,
                unit_price=fee.amount,
                amount=fee.amount,
                fee=fee,
            )
            audit(
                actor=actor,
                action="invoice.issued",
                obj=invoice,
                organization_id=invoice.organization_id,
                clinic_id=invoice.clinic_id,
                patient_id=invoice.patient_id,
                number=invoice.number,
                appointment_id=appointment.pk,
                total=invoice.total,
                currency=invoice.currency,
                fee_id=fee.pk,
            )
    except IntegrityError:
        # Raised at the same moment by another caller (the unique live_for_appointment): answer theirs.
        return Invoice.objects.get(live_for_appointment=appointment.pk)
    return invoice


def _status_after_payment(invoice: Invoice) -> str:
    return InvoiceStatus.PAID if invoice.amount_paid >= invoice.total else InvoiceStatus.PARTIALLY_PAID


@retry_on_deadlock
def payment_record(
    *,
    actor: User,
    invoice: Invoice,
    method: str,
    amount: Any,
    terminal_reference: str = "",
    insurer: str = "",
    claim_reference: str = "",
    now: dt.datetime | None = None,
) -> Payment:
    """Take a payment at the desk: the whole balance or part of it, never more.

    Locks the invoice row, then compares the amount with the balance under the lock: a second desk
    paying at the same moment waits and is refused (409 naming `amount`) if the first paid it off."""
    _check_desk(actor, invoice.clinic_id)
    value = money(amount)
    terminal_reference, insurer, claim_reference = (
        (terminal_reference or "").strip(),
        (insurer or "").strip(),
        (claim_reference or "").strip(),
    )
    if method not in PaymentMethod.values:
        raise ValidationFailed("Choose cash, card or insurance.", fields={"method": "Unknown method."})
    missing: dict[str, str] = {}
    if method == PaymentMethod.CARD and not terminal_reference:
        missing["terminal_reference"] = "The card terminal's reference is required for a card payment."
    if method == PaymentMethod.INSURANCE:
        if not insurer:
            missing["insurer"] = "Name the insurer."
        if not claim_reference:
            missing["claim_reference"] = "The claim reference is required for an insurance payment."
    if missing:
        raise ValidationFailed(next(iter(missing.values())), fields=missing)
    with transaction.atomic():
        locked = _lock(invoice)
        # A paid invoice falls through to the balance check (nothing owed: the amount is too much),
        # which is what the slower of two desks paying it off at once is told.
        if locked.status not in (*PAYABLE_STATUSES, InvoiceStatus.PAID):
            raise Conflict(
                f"Invoice {locked.number} is {locked.get_status_display().lower()}: it takes no payments.",
                code="not_payable",
            )
        balance = locked.total - locked.amount_paid
        if value > balance:
            raise Conflict(
                f"{value} is more than the balance of {balance} {locked.currency}"
                + (f": invoice {locked.number} is paid." if not balance else "."),
                fields={"amount": f"At most {balance} (the balance)."},
                code="more_than_balance",
            )
        payment = Payment(
            invoice=locked,
            organization_id=locked.organization_id,
            clinic_id=locked.clinic_id,
            method=method,
            amount=value,
            terminal_reference=terminal_reference,
            insurer=insurer,
            claim_reference=claim_reference,
            received_by=actor,
            received_at=now or timezone.now(),
        )
        payment.save(force_insert=True)
        locked.amount_paid += value
        locked.status = _status_after_payment(locked)
        locked.save(update_fields=["amount_paid", "status", "updated_at"])
        audit(
            actor=actor,
            action="payment.recorded",
            obj=payment,
            organization_id=locked.organization_id,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            invoice_id=locked.pk,
            number=locked.number,
            method=method,
            amount=value,
            balance=locked.total - locked.amount_paid,
        )
    invoice.amount_paid, invoice.status = locked.amount_paid, locked.status
    return payment


def refund_limit(invoice: Invoice, *, appointment: Appointment | None = None) -> tuple[Decimal, str]:
    """The most that may go back now, and why: the clinic's cancellation policy for a cancelled
    appointment (its percentage before or after the cut-off, of what was paid), otherwise all of it."""
    left = invoice.amount_paid - invoice.amount_refunded
    appointment = appointment or invoice.appointment
    if appointment is None or appointment.status != AppointmentStatus.CANCELLED:
        return left, "everything paid"
    policy = billing_settings_for(appointment.clinic)
    cutoff = appointment.start - dt.timedelta(minutes=appointment.clinic.cancellation_cutoff_minutes)
    before = appointment.cancelled_at is not None and appointment.cancelled_at <= cutoff
    percent = policy.refund_percent_before_cutoff if before else policy.refund_percent_after_cutoff
    allowed = (invoice.amount_paid * percent / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
    when = "before" if before else "after"
    return max(
        allowed - invoice.amount_refunded, Decimal("0.00")
    ), f"{percent}% when cancelled {when} the cut-off"


@retry_on_deadlock
def refund_issue(
    *,
    actor: User,
    invoice: Invoice,
    reason: str,
    amount: Any = None,
    method: str | None = None,
    now: dt.datetime | None = None,
) -> Refund:
    """Give money back, within the clinic's cancellation policy (refund_limit); the invoice is then
    settled (refunded): nothing more is owed on it. `amount` defaults to the most the policy allows,
    `method` to how the last payment was made. Locks the invoice row."""
    _check_desk(actor, invoice.clinic_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the money goes back.", fields={"reason": "A reason is required."})
    value = None if amount is None or amount == "" else money(amount)
    if method is not None and method not in PaymentMethod.values:
        raise ValidationFailed("Choose cash, card or insurance.", fields={"method": "Unknown method."})
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.amount_paid - locked.amount_refunded <= 0:
            raise Conflict(
                f"Nothing paid on invoice {locked.number} is left to refund.", code="nothing_to_refund"
            )
        appointment = (
            Appointment.objects.select_related("clinic").get(pk=locked.appointment_id)
            if locked.appointment_id
            else None
        )
        limit, rule = refund_limit(locked, appointment=appointment)
        if value is None:
            value = limit
        if value <= 0 or value > limit:
            raise Conflict(
                f"The clinic's policy ({rule}) allows a refund of at most {limit} {locked.currency}.",
                fields={"amount": f"At most {limit}."},
                code="more_than_refundable",
            )
        last = locked.payments.order_by("-received_at", "-id").first()
        refund = Refund(
            invoice=locked,
            organization_id=locked.organization_id,
            clinic_id=locked.clinic_id,
            method=method or (last.method if last else PaymentMethod.CASH),
            amount=value,
            reason=reason,
            issued_by=actor,
            issued_at=now or timezone.now(),
        )
        refund.save(force_insert=True)
        locked.amount_refunded += value
        locked.status = InvoiceStatus.REFUNDED
        locked.save(update_fields=["amount_refunded", "status", "updated_at"])
        audit(
            actor=actor,
            action="refund.issued",
            obj=refund,
            organization_id=locked.organization_id,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            invoice_id=locked.pk,
            number=locked.number,
            method=refund.method,
            amount=value,
            policy=rule,
            reason=reason,
        )
    invoice.amount_refunded, invoice.status = locked.amount_refunded, locked.status
    return refund


@retry_on_deadlock
def invoice_void(*, actor: User | None, invoice: Invoice, reason: str) -> Invoice:
    """Cancel an invoice nothing was paid on (refund first otherwise). Locks the invoice row."""
    _check_desk(actor, invoice.clinic_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the invoice is void.", fields={"reason": "A reason is required."})
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.status == InvoiceStatus.VOID:
            return locked
        if locked.amount_paid > 0 or locked.status not in (InvoiceStatus.DRAFT, InvoiceStatus.ISSUED):
            raise Conflict(
                f"Invoice {locked.number} has payments: refund them instead of voiding it.",
                code="has_payments",
            )
        locked.status = InvoiceStatus.VOID
        locked.voided_at = timezone.now()
        locked.void_reason = reason[:500]
        locked.live_for_appointment = None
        locked.save(
            update_fields=["status", "voided_at", "void_reason", "live_for_appointment", "updated_at"]
        )
        audit(
            actor=actor,
            action="invoice.voided",
            obj=locked,
            organization_id=locked.organization_id,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            number=locked.number,
            reason=reason,
        )
    return locked


def billing_settings_set(*, actor: User | None, clinic: Clinic, **fields: Any) -> BillingSettings:
    """Set a clinic's currency, when invoices are raised and its refund percentages."""
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    if actor is not None and not (actor.is_superuser or actor.role == "admin"):
        raise PermissionDenied("Only administrators set a clinic's billing.")
    _check_desk(actor, clinic.pk)
    with transaction.atomic():
        row = BillingSettings.objects.select_for_update().filter(clinic=clinic).first()
        creating = row is None
        current = row if row is not None else BillingSettings(clinic=clinic)
        before = {name: getattr(current, name) for name in SETTINGS_FIELDS}
        for name, value in fields.items():
            setattr(current, name, value)
        if isinstance(current.currency, str):
            current.currency = current.currency.strip().upper()
        validate_model(current, exclude=["clinic"])
        current.save(force_insert=creating)
        audit(
            actor=actor,
            action="billing_settings.set",
            obj=current,
            organization_id=clinic.organization_id,
            clinic_id=clinic.pk,
            changes=changes(before, current, SETTINGS_FIELDS),
        )
    return current


def fee_save(*, actor: User | None, fee: FeeSchedule | None = None, **fields: Any) -> FeeSchedule:
    """Add a fee (fee None) or change one. Admins only; the department sets the organization."""
    unknown = set(fields) - set(FEE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    if actor is not None and not (actor.is_superuser or actor.role == "admin"):
        raise PermissionDenied("Only administrators set fees.")
    current = fee if fee is not None else FeeSchedule()
    before = {name: getattr(current, name, None) for name in FEE_FIELDS} if fee is not None else {}
    for name, value in fields.items():
        setattr(current, name, value)
    if "amount" in fields:
        current.amount = money(fields["amount"], allow_zero=True)
    if current.department_id is None:
        raise ValidationFailed("Choose a department.", fields={"department": "This field is required."})
    department = current.department
    _check_desk(actor, department.clinic_id)
    current.organization_id = department.clinic.organization_id
    if current.doctor is not None and not current.doctor.departments.filter(pk=department.pk).exists():
        raise ValidationFailed(
            "The doctor does not work in this department.", fields={"doctor": "Not in this department."}
        )
    validate_model(current, exclude=["organization"])
    with transaction.atomic():
        current.save()
        audit(
            actor=actor,
            action="fee.saved",
            obj=current,
            organization_id=current.organization_id,
            clinic_id=department.clinic_id,
            changes=changes(before, current, FEE_FIELDS) if before else {"amount": current.amount},
        )
    return current
