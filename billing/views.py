"""The desk's money pages: a printable receipt (staff of the clinic, and the patient it belongs to) and
the cash-up of one desk user's day at one clinic, in the clinic's time."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from opd.core.models import Clinic, Role, User
from opd.core.tenancy import clinics_for, signed_in_user

from .forms import CashUpForm
from .selectors import cash_up, clinic_today, invoices_for


@login_required
@require_GET
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in_user(request)
    invoice = get_object_or_404(invoices_for(user).prefetch_related("lines", "payments", "refunds"), pk=pk)
    return render(
        request,
        "billing/receipt.html",
        {"invoice": invoice, "for_patient": user.is_patient, "clinic": invoice.clinic},
    )


def _desks_for(user: User, clinics: QuerySet[Clinic]) -> QuerySet[User]:
    """Whose cash-up the user may read: staff their own, admins anyone's at their clinics."""
    if user.is_superuser or user.role == Role.ADMIN:
        return User.objects.filter(
            role__in=[Role.ADMIN, Role.STAFF], organization_id__in=clinics.values("organization_id")
        ).order_by("last_name", "first_name", "username")
    return User.objects.filter(pk=user.pk)


@login_required
@require_GET
def cash_up_page(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if not user.is_clinic_staff:
        raise PermissionDenied
    clinics = clinics_for(user).filter(is_active=True)
    desks = _desks_for(user, clinics)
    first = clinics.first()
    if first is None:
        raise PermissionDenied
    today = clinic_today(first)
    form = CashUpForm(
        request.GET or None,
        clinics=clinics,
        desks=desks,
        initial={"clinic": first, "desk": user, "day": today},
    )
    report = None
    if not request.GET:
        report = cash_up(clinic=first, user=user, day=today)
    elif form.is_valid():
        data = form.cleaned_data
        report = cash_up(clinic=data["clinic"], user=data["desk"], day=data["day"])
    return render(
        request, "billing/cash_up.html", {"form": form, "report": report}, status=200 if report else 400
    )
