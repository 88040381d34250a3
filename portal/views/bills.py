"""What I owe: the patient's balance (per currency) and invoices, each with its printable receipt."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing.models import InvoiceStatus
from billing.selectors import invoices_for, outstanding_for

from .common import PatientRequest, patient_required

BILLS_PER_PAGE = 20


@patient_required
@require_GET
def bills(request: PatientRequest) -> HttpResponse:
    invoices = invoices_for(request.user).exclude(status=InvoiceStatus.DRAFT).order_by("-issued_at", "-id")
    page = Paginator(invoices, BILLS_PER_PAGE).get_page(request.GET.get("page"))
    owed = sorted(outstanding_for(request.patient).items())
    return render(request, "portal/bills.html", {"page": page, "owed": [(c, a) for c, a in owed if a]})
