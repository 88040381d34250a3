"""Reads of fees and money, scoped to the user who asks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from opd.core.models import Clinic, Role, User
from opd.core.tenancy import restrict_to_clinics
from patients.models import Patient
from scheduling.models import Appointment, AppointmentStatus

from .models import (
    DEFAULT_CURRENCY,
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


REVENUE_COLUMNS = ["date", "currency", "payments", "received", "refunded", "net"]


def revenue_daily(
    *,
    zones: dict[int, ZoneInfo],
    date_from: dt.date,
    date_to: dt.date,
    department_id: int | None = None,
    doctor_id: int | None = None,
) -> list[dict[str, Any]]:
    """Money taken and given back per clinic-local day (each clinic's own calendar), per currency, to
    the cent: one row per day and currency of the clinics in `zones`, days without money at zero. A
    department or doctor filter keeps the money of invoices for their appointments."""
    clinic_ids = list(zones)
    currencies = dict.fromkeys(clinic_ids, DEFAULT_CURRENCY)
    for clinic_id, currency in BillingSettings.objects.filter(clinic_id__in=clinic_ids).values_list(
        "clinic_id", "currency"
    ):
        currencies[clinic_id] = currency
    # A day in any zone lies within a day either side of the UTC one.
    lo = dt.datetime.combine(date_from - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(date_to + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    narrowed = Q()
    if department_id is not None:
        narrowed &= Q(invoice__appointment__department_id=department_id)
    if doctor_id is not None:
        narrowed &= Q(invoice__appointment__doctor_id=doctor_id)
    payments = Payment.objects.filter(
        narrowed, clinic_id__in=clinic_ids, received_at__gte=lo, received_at__lt=hi
    )
    refunds = Refund.objects.filter(narrowed, clinic_id__in=clinic_ids, issued_at__gte=lo, issued_at__lt=hi)
    days = [date_from + dt.timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    table: dict[tuple[dt.date, str], dict[str, Any]] = {
        (day, currency): {
            "date": day,
            "currency": currency,
            "payments": 0,
            "received": ZERO,
            "refunded": ZERO,
        }
        for day in days
        for currency in sorted(set(currencies.values()))
    }

    def row_for(clinic_id: int, at: dt.datetime, currency: str) -> dict[str, Any]:
        # A day outside the range, or a currency the clinic no longer uses, gets its own row
        # (kept out of the answer below when outside the range).
        day = timezone.localdate(at, timezone=zones[clinic_id])
        return table.setdefault(
            (day, currency),
            {"date": day, "currency": currency, "payments": 0, "received": ZERO, "refunded": ZERO},
        )

    for clinic_id, at, amount, currency in payments.values_list(
        "clinic_id", "received_at", "amount", "invoice__currency"
    ):
        row = row_for(clinic_id, at, currency)
        row["payments"] += 1
        row["received"] += amount
    for clinic_id, at, amount, currency in refunds.values_list(
        "clinic_id", "issued_at", "amount", "invoice__currency"
    ):
        row_for(clinic_id, at, currency)["refunded"] += amount
    rows = [
        row
        for (day, _), row in sorted(table.items(), key=lambda item: (item[0][0], item[0][1]))
        if date_from <= day <= date_to
    ]
    for row in rows:
        row["net"] = row["received"] - row["refunded"]
    return rows
