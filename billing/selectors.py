"""Reads of fees and money, scoped to the user who asks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from opd.core.models import Clinic, Role, User
from opd.core.tenancy import restrict_to_clinics
from patients.models import Patient
from scheduling.models import Appointment, AppointmentStatus

from .models import (
    PAYABLE_STATUSES,
    BillingSettings,
    FeeSchedule,
    Invoice,
    Payment,
    PaymentMethod,
    Refund,
    VisitType,
)

ZERO = Decimal("0.00")


def billing_settings_for(clinic: Clinic) -> BillingSettings:
    """The clinic's settings row, or the defaults (unsaved) where it has none."""
    found = BillingSettings.objects.filter(clinic=clinic).first()
    return found if found is not None else BillingSettings(clinic=clinic)


def visit_type_of(appointment: Appointment) -> str:
    """A follow-up when the patient was seen in the same department before this appointment; else new."""
    seen_before = (
        Appointment.objects.filter(
            patient_id=appointment.patient_id,
            department_id=appointment.department_id,
            status=AppointmentStatus.COMPLETED,
            start__lt=appointment.start,
        )
        .exclude(pk=appointment.pk)
        .exists()
    )
    return VisitType.FOLLOW_UP if seen_before else VisitType.NEW


def fee_for(appointment: Appointment) -> FeeSchedule | None:
    """The most specific active fee for the appointment's department, doctor and visit type: doctor and
    visit type, then doctor for any visit, then visit type for any doctor, then the department's own."""
    visit_type = visit_type_of(appointment)
    candidates = FeeSchedule.objects.filter(
        department_id=appointment.department_id, is_active=True, visit_type__in=[visit_type, VisitType.ANY]
    ).filter(Q(doctor_id=appointment.doctor_id) | Q(doctor__isnull=True))

    def specificity(fee: FeeSchedule) -> tuple[int, int, int]:
        # Doctor outranks visit type; the id breaks ties so the choice never depends on row order.
        return (fee.doctor_id is not None, fee.visit_type != VisitType.ANY, -fee.pk)

    return max(candidates, key=specificity, default=None)


def invoices_for(user: User) -> QuerySet[Invoice]:
    """Invoices the user may see: a patient their own, admins and staff those of their clinics; doctors
    none (money is the desk's)."""
    qs = Invoice.objects.select_related("clinic", "patient")
    if user.is_superuser:
        return qs
    if user.role == Role.PATIENT:
        return qs.filter(patient__user=user, organization_id=user.organization_id)  # type: ignore[misc]  # no organization: matches no row
    if user.role in (Role.ADMIN, Role.STAFF):
        return restrict_to_clinics(qs, user)
    return qs.none()


def outstanding_for(patient: Patient) -> dict[str, Decimal]:
    """What the patient owes, per currency (a patient seen in two countries owes in two)."""
    owed: dict[str, Decimal] = {}
    rows = Invoice.objects.filter(patient=patient, status__in=PAYABLE_STATUSES).values_list(
        "currency", "total", "amount_paid"
    )
    for currency, total, paid in rows:
        owed[currency] = owed.get(currency, ZERO) + total - paid
    return owed


@dataclass
class MethodTotals:
    method: str
    label: str
    received: Decimal = ZERO
    refunded: Decimal = ZERO
    payments: int = 0
    refunds: int = 0

    @property
    def net(self) -> Decimal:
        return self.received - self.refunded


@dataclass
class CashUp:
    """One desk user's takings at one clinic on one clinic-local day, by method, to the cent."""

    clinic: Clinic
    user: User
    day: dt.date
    currency: str
    methods: list[MethodTotals] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)

    @property
    def received(self) -> Decimal:
        return sum((m.received for m in self.methods), ZERO)

    @property
    def refunded(self) -> Decimal:
        return sum((m.refunded for m in self.methods), ZERO)

    @property
    def net(self) -> Decimal:
        return self.received - self.refunded

    @property
    def cash_in_drawer(self) -> Decimal:
        return next(m.net for m in self.methods if m.method == PaymentMethod.CASH)


def clinic_day_bounds(clinic: Clinic, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants the clinic's local day starts and ends (a DST day is 23 or 25 hours)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=clinic.tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=clinic.tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def cash_up(*, clinic: Clinic, user: User, day: dt.date) -> CashUp:
    """What `user` took and gave back at `clinic` on its local `day`: totals by method, and the rows."""
    start, end = clinic_day_bounds(clinic, day)
    payments = list(
        Payment.objects.filter(clinic=clinic, received_by=user, received_at__gte=start, received_at__lt=end)
        .select_related("invoice__patient")
        .order_by("received_at", "id")
    )
    refunds = list(
        Refund.objects.filter(clinic=clinic, issued_by=user, issued_at__gte=start, issued_at__lt=end)
        .select_related("invoice__patient")
        .order_by("issued_at", "id")
    )
    methods = {m: MethodTotals(method=m, label=str(label)) for m, label in PaymentMethod.choices}
    for payment in payments:
        methods[payment.method].received += payment.amount
        methods[payment.method].payments += 1
    for refund in refunds:
        methods[refund.method].refunded += refund.amount
        methods[refund.method].refunds += 1
    return CashUp(
        clinic=clinic,
        user=user,
        day=day,
        currency=billing_settings_for(clinic).currency,
        methods=list(methods.values()),
        payments=payments,
        refunds=refunds,
    )


def clinic_today(clinic: Clinic, now: dt.datetime | None = None) -> dt.date:
    return timezone.localdate(now or timezone.now(), timezone=clinic.tz)


def revenue_by_day(
    *, clinic_ids: list[int] | None, start: dt.date, end: dt.date, tz_of: dict[int, Clinic]
) -> dict[tuple[int, dt.date], Decimal]:
    """Money received less money refunded, per clinic and clinic-local day, for days in [start, end]."""
    totals: dict[tuple[int, dt.date], Decimal] = {}
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    payments = Payment.objects.filter(received_at__gte=lo, received_at__lt=hi)
    refunds = Refund.objects.filter(issued_at__gte=lo, issued_at__lt=hi)
    if clinic_ids is not None:
        payments = payments.filter(clinic_id__in=clinic_ids)
        refunds = refunds.filter(clinic_id__in=clinic_ids)
    rows = [(c, at, amount) for c, at, amount in payments.values_list("clinic_id", "received_at", "amount")]
    rows += [(c, at, -amount) for c, at, amount in refunds.values_list("clinic_id", "issued_at", "amount")]
    for clinic_id, at, amount in rows:
        clinic = tz_of.get(clinic_id)
        if clinic is None:
            continue
        day = timezone.localdate(at, timezone=clinic.tz)
        if start <= day <= end:
            totals[(clinic_id, day)] = totals.get((clinic_id, day), ZERO) + amount
    return totals


def invoice_totals(invoice: Invoice) -> tuple[Decimal, Decimal]:
    """(paid, refunded) summed from the rows: what the kept amounts on the invoice must equal."""
    paid = invoice.payments.aggregate(s=Sum("amount"))["s"] or ZERO
    refunded = invoice.refunds.aggregate(s=Sum("amount"))["s"] or ZERO
    return paid, refunded
