"""Fees and payments. Money is Decimal to the cent (DecimalField, never float), in the clinic's currency.

Why the currency is the clinic's (BillingSettings.currency), not the organization's: one organization
runs clinics in several countries (the demo group has London, Kolkata, New York...), and a Kolkata desk
takes rupees. Every invoice keeps the currency it was raised in, so a later change of the setting never
re-labels old money; totals are only ever summed within one clinic, so currencies never mix.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from opd.core.models import Clinic, Department, Organization
from patients.models import Patient
from scheduling.models import Appointment, Doctor

CENT = Decimal("0.01")
# GBP for a clinic without settings: the platform's first clinics are in the UK. A clinic elsewhere sets its own.
DEFAULT_CURRENCY = "GBP"
currency_code = RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code: three capital letters, e.g. GBP, INR, USD.")


class InvoiceAt(models.TextChoices):
    CHECK_IN = "check_in", "At check-in"
    COMPLETION = "completion", "When the consultation is completed"


class BillingSettings(models.Model):
    """A clinic's money settings. A clinic without a row uses the defaults (billing.selectors)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, primary_key=True, related_name="+")
    currency = models.CharField(
        max_length=3,
        default=DEFAULT_CURRENCY,
        validators=[currency_code],
        help_text="ISO 4217 code (GBP, INR, USD...).",
    )
    invoice_at = models.CharField(
        max_length=12,
        choices=InvoiceAt.choices,
        default=InvoiceAt.CHECK_IN,
        help_text="When the visit's invoice is raised from the fee schedule.",
    )
    # The cancellation policy: what share of what was paid goes back when the appointment is cancelled
    # before the clinic's cancellation cut-off (Clinic.cancellation_cutoff_minutes), and after it.
    refund_percent_before_cutoff = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    refund_percent_after_cutoff = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )

    class Meta:
        verbose_name = "billing settings"
        verbose_name_plural = "billing settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(refund_percent_before_cutoff__gte=0, refund_percent_before_cutoff__lte=100)
                & Q(refund_percent_after_cutoff__gte=0, refund_percent_after_cutoff__lte=100),
                name="billing_settings_percents",
            ),
            models.CheckConstraint(
                condition=Q(invoice_at__in=InvoiceAt.values), name="billing_settings_when"
            ),
        ]

    def __str__(self) -> str:
        return f"Billing settings of clinic {self.clinic_id}"


class VisitType(models.TextChoices):
    ANY = "any", "Any visit"
    NEW = "new", "First visit to the department"
    FOLLOW_UP = "follow_up", "Follow-up (seen in the department before)"


class FeeSchedule(models.Model):
    """A fee for a visit in a department, optionally only with one doctor and for one visit type.

    The most specific entry wins (billing.selectors.fee_for): doctor and visit type, then doctor, then
    visit type, then the department's entry for any visit."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    doctor = models.ForeignKey(
        Doctor,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: any doctor.",
    )
    visit_type = models.CharField(max_length=12, choices=VisitType.choices, default=VisitType.ANY)
    description = models.CharField(max_length=200, help_text="Shown on the invoice line.")
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department_id", "doctor_id", "visit_type"]
        verbose_name_plural = "fee schedule"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="billing_fee_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(visit_type__in=VisitType.values), name="billing_fee_visit_type"
            ),
        ]
        indexes = [models.Index(fields=["department", "is_active"], name="billing_fee_department")]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    REFUNDED = "refunded", "Refunded"


# An invoice in these states may still take payments.
PAYABLE_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)


class InvoiceSequence(models.Model):
    """Per-organization counter behind invoice numbers (opd.core.db.next_in_sequence)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Invoice sequence of organization {self.organization_id}: {self.last_value}"


class Invoice(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="invoices")
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    # The backstop for "one live invoice per appointment": the appointment's id while the invoice is not
    # void, NULL once it is (MariaDB has no partial unique index; a unique column allows many NULLs).
    live_for_appointment = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    number = models.CharField(max_length=20)
    currency = models.CharField(max_length=3, validators=[currency_code])
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    # Kept by the services under the invoice's row lock, so lists and balances need no sums.
    amount_paid = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="billing_invoice_number_unique"),
            # The database, not only the service, refuses an overpayment or an over-refund.
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_paid__lte=F("total")),
                name="billing_invoice_not_overpaid",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount_paid")),
                name="billing_invoice_not_over_refunded",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="billing_invoice_total_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=InvoiceStatus.values), name="billing_invoice_status"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "created_at"], name="billing_invoice_patient"),
            models.Index(fields=["clinic", "issued_at"], name="billing_invoice_clinic_issued"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def balance(self) -> Decimal:
        """What the patient still owes: nothing on a void or refunded invoice (a refund settles it)."""
        if self.status not in PAYABLE_STATUSES:
            return Decimal("0.00")
        return self.total - self.amount_paid


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=200)
    quantity = models.PositiveSmallIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    fee = models.ForeignKey(FeeSchedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["invoice_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount=F("unit_price") * F("quantity")), name="billing_line_amount"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} x {self.quantity}"


class PaymentMethod(models.TextChoices):
    CASH = "cash", "Cash"
    CARD = "card", "Card"
    INSURANCE = "insurance", "Insurance"


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    # Copied from the invoice, so the cash-up reads one table per desk and day.
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=12, choices=PaymentMethod.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    terminal_reference = models.CharField(
        max_length=64, blank=True, help_text="The card terminal's transaction reference."
    )
    insurer = models.CharField(max_length=120, blank=True)
    claim_reference = models.CharField(max_length=64, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_positive"),
            models.CheckConstraint(
                condition=Q(method__in=PaymentMethod.values), name="billing_payment_method"
            ),
            models.CheckConstraint(
                condition=~Q(method=PaymentMethod.CARD) | ~Q(terminal_reference=""),
                name="billing_payment_card_has_reference",
            ),
            models.CheckConstraint(
                condition=~Q(method=PaymentMethod.INSURANCE) | (~Q(insurer="") & ~Q(claim_reference="")),
                name="billing_payment_insurance_has_claim",
            ),
        ]
        indexes = [models.Index(fields=["received_by", "received_at"], name="billing_payment_desk_time")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount}"


class Refund(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    # How the money went back (cash from the drawer, to the card, to the insurer): the cash-up nets it.
    method = models.CharField(max_length=12, choices=PaymentMethod.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=500)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["issued_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_refund_positive"),
            models.CheckConstraint(
                condition=Q(method__in=PaymentMethod.values), name="billing_refund_method"
            ),
        ]
        indexes = [models.Index(fields=["issued_by", "issued_at"], name="billing_refund_desk_time")]

    def __str__(self) -> str:
        return f"Refund {self.amount}"
