"""Fees and payments in the admin: the fee schedule and billing settings (administrators set, staff read),
and invoices with their lines, payments and refunds read-only, paid, refunded and voided through the
services from the invoice's own page ("Record payment", "Refund", "Void", "Receipt").

    model              role admin (organization)          role staff (their clinics)
    BillingSettings    view add change                    view
    FeeSchedule        view add change                    view
    Invoice            view pay refund void               view pay refund void
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    VIEW,
    OpdModelAdmin,
    OpdTabularInline,
    ScopedRelatedFilter,
    adopt,
    attach_domain_error,
    in_clinic_time,
)
from opd.core.errors import DomainError
from opd.core.models import Role
from opd.core.tenancy import restrict_to_clinics
from patients.admin import patient_page_section

from .forms import PaymentForm, RefundForm, VoidForm
from .models import BillingSettings, FeeSchedule, Invoice, InvoiceLine, Payment, Refund
from .services import (
    FEE_FIELDS,
    SETTINGS_FIELDS,
    billing_settings_set,
    fee_save,
    invoice_void,
    payment_record,
    refund_issue,
    refund_limit,
)
from .templatetags.money import money

DESK = {VIEW, "pay", "refund", "void"}


@admin.register(BillingSettings)
class BillingSettingsAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW}}
    list_display = (
        "clinic",
        "currency",
        "invoice_at",
        "refund_percent_before_cutoff",
        "refund_percent_after_cutoff",
    )
    fields = ("clinic", *SETTINGS_FIELDS)
    locked_on_change = ("clinic",)

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        clinic = obj.clinic if change else data["clinic"]
        saved = billing_settings_set(
            actor=request.user,
            clinic=clinic,
            **{name: data[name] for name in SETTINGS_FIELDS if name in data},
        )
        adopt(obj, saved)


@admin.register(FeeSchedule)
class FeeScheduleAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW}}
    list_display = ("description", "department", "doctor_or_any", "visit_type", "amount_shown", "is_active")
    list_filter = ("is_active", "visit_type", ("department", ScopedRelatedFilter))
    list_select_related = ("department__clinic", "doctor__user")
    search_fields = ("description",)
    fields = FEE_FIELDS
    ordering = ("department__clinic__name", "department__name", "doctor_id", "visit_type")

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user, "department__clinic")

    @admin.display(description="doctor")
    def doctor_or_any(self, obj: FeeSchedule) -> str:
        return str(obj.doctor) if obj.doctor_id else "Any doctor"

    @admin.display(description="fee", ordering="amount")
    def amount_shown(self, obj: FeeSchedule) -> str:
        return str(obj.amount)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            current = FeeSchedule.objects.get(pk=obj.pk)
            saved = fee_save(actor=request.user, fee=current, **self.changes(form, FEE_FIELDS))
        else:
            saved = fee_save(actor=request.user, **{name: data[name] for name in FEE_FIELDS if name in data})
        adopt(obj, saved)


class _ReadOnlyInline(OpdTabularInline):
    role_permissions = {Role.ADMIN: {VIEW}, Role.STAFF: {VIEW}}
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user, "invoice__clinic")


class InvoiceLineInline(_ReadOnlyInline):
    model = InvoiceLine
    fields = ("description", "quantity", "unit_price", "amount")


class PaymentInline(_ReadOnlyInline):
    model = Payment
    fields = (
        "received_local",
        "method",
        "amount",
        "terminal_reference",
        "insurer",
        "claim_reference",
        "received_by",
    )

    @admin.display(description="received (clinic time)")
    def received_local(self, obj: Payment) -> str:
        return in_clinic_time(obj.received_at, obj.clinic.time_zone)


class RefundInline(_ReadOnlyInline):
    model = Refund
    fields = ("issued_local", "method", "amount", "reason", "issued_by")

    @admin.display(description="issued (clinic time)")
    def issued_local(self, obj: Refund) -> str:
        return in_clinic_time(obj.issued_at, obj.clinic.time_zone)


@admin.register(Invoice)
class InvoiceAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: DESK, Role.STAFF: DESK}
    list_display = ("number", "patient", "issued_local", "status", "total_shown", "balance_shown", "clinic")
    list_filter = ("status", ("clinic", ScopedRelatedFilter))
    list_select_related = ("patient", "clinic")
    search_fields = ("=number", "=patient__mrn", "^patient__last_name")
    search_help_text = "Exact invoice number or MRN, or the start of the patient's last name."
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    inlines = (InvoiceLineInline, PaymentInline, RefundInline)
    fields = (
        "number",
        "patient",
        "appointment",
        "clinic",
        "status",
        "currency",
        "total",
        "amount_paid",
        "amount_refunded",
        "balance_shown",
        "issued_local",
        "issued_by",
        "void_reason",
        "receipt_link",
    )
    readonly_fields = fields

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user)

    def has_pay_permission(self, request) -> bool:
        return self.allowed(request, "pay")

    def has_refund_permission(self, request) -> bool:
        return self.allowed(request, "refund")

    def has_void_permission(self, request) -> bool:
        return self.allowed(request, "void")

    @admin.display(description="issued (clinic time)", ordering="issued_at")
    def issued_local(self, obj: Invoice) -> str:
        return in_clinic_time(obj.issued_at, obj.clinic.time_zone)

    @admin.display(description="total", ordering="total")
    def total_shown(self, obj: Invoice) -> str:
        return money(obj.total, obj.currency)

    @admin.display(description="still owed")
    def balance_shown(self, obj: Invoice) -> str:
        return money(obj.balance, obj.currency)

    @admin.display(description="receipt")
    def receipt_link(self, obj: Invoice) -> str:
        return format_html('<a href="{}">Printable receipt</a>', reverse("billing:receipt", args=[obj.pk]))

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(view)

        return [
            path("<path:object_id>/pay/", wrap(self.pay_view), name="billing_invoice_pay"),
            path("<path:object_id>/refund/", wrap(self.refund_view), name="billing_invoice_refund"),
            path("<path:object_id>/void/", wrap(self.void_view), name="billing_invoice_void"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            **(extra_context or {}),
            "may_pay": self.has_pay_permission(request),
            "may_refund": self.has_refund_permission(request),
            "may_void": self.has_void_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra)

    def _money_form(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        permission: str,
        form_class,
        title: str,
        intro: str,
        act,
    ) -> HttpResponse:
        if not self.allowed(request, permission):
            raise PermissionDenied
        invoice = self.get_object(request, object_id)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                message = act(invoice, form.cleaned_data)
            except DomainError as exc:
                attach_domain_error(form, exc)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {invoice.number}",
            "opts": self.opts,
            "invoice": invoice,
            "form": form,
            "intro": intro,
            "balance": money(invoice.balance, invoice.currency),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        # A refused or invalid form answers 400 with the messages beside the fields, as the API would.
        status = 400 if request.method == "POST" and form.errors else 200
        return TemplateResponse(request, "admin/billing/invoice/money_form.html", context, status=status)

    def pay_view(self, request, object_id):
        def act(invoice: Invoice, data: dict) -> str:
            payment = payment_record(actor=request.user, invoice=invoice, **data)
            return (
                f"Recorded {payment.get_method_display().lower()} {money(payment.amount, invoice.currency)} "
                f"on {invoice.number}; still owed {money(invoice.balance, invoice.currency)}."
            )

        return self._money_form(
            request,
            object_id,
            permission="pay",
            form_class=PaymentForm,
            title="Record payment",
            intro="Any part of the balance; a card payment needs the terminal's reference, insurance the claim's.",
            act=act,
        )

    def refund_view(self, request, object_id):
        invoice = self.get_object(request, object_id)
        limit, rule = refund_limit(invoice)

        def act(invoice: Invoice, data: dict) -> str:
            refund = refund_issue(
                actor=request.user,
                invoice=invoice,
                reason=data["reason"],
                amount=data.get("amount"),
                method=data.get("method") or None,
            )
            return f"Refunded {money(refund.amount, invoice.currency)} ({refund.get_method_display().lower()}) on {invoice.number}."

        return self._money_form(
            request,
            object_id,
            permission="refund",
            form_class=RefundForm,
            title="Refund",
            intro=f"The clinic's policy ({rule}) allows up to {money(limit, invoice.currency)} now. "
            "After a refund nothing more is owed on the invoice.",
            act=act,
        )

    def void_view(self, request, object_id):
        def act(invoice: Invoice, data: dict) -> str:
            invoice_void(actor=request.user, invoice=invoice, reason=data["reason"])
            return f"Invoice {invoice.number} is void."

        return self._money_form(
            request,
            object_id,
            permission="void",
            form_class=VoidForm,
            title="Void invoice",
            intro="Only an invoice nothing was paid on can be voided; refund payments instead.",
            act=act,
        )


@patient_page_section
def balance_section(request: HttpRequest, patient) -> dict:
    """The patient's page shows what they owe, per currency, with a link to their invoices."""
    from .selectors import outstanding_for

    owed = {currency: amount for currency, amount in outstanding_for(patient).items() if amount}
    if not owed:
        return {"balance": "Nothing owed."}
    return {
        "balance": "Owes " + ", ".join(money(amount, currency) for currency, amount in sorted(owed.items()))
    }
