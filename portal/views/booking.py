"""Find an open time (clinic -> department -> doctor or first available) and book it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from opd.core.errors import DomainError
from opd.core.ratelimit import rate_limited
from opd.core.tenancy import clinics_for, departments_for
from scheduling.selectors import bookable_slot_q, slots_for
from scheduling.services import appointment_book, appointment_book_first_available

from ..forms import BookForm, FindForm
from ..selectors import calendar, first_open_day, nearest_open_slots, open_slots, slots_on
from .common import (
    PORTAL,
    PatientRequest,
    by_doctor,
    overlap_message,
    patient_required,
    pick_day,
    submit_once,
)


def _default_choice(request: PatientRequest) -> dict[str, int]:
    """Preselect what there is no choice about: the patient's clinic (or the only one), and the clinic's
    only department. With both known the page opens straight on the calendar."""
    clinics = list(clinics_for(request.user).filter(is_active=True).values_list("pk", flat=True))
    wanted = request.GET.get("clinic", "")
    if wanted.isascii() and wanted.isdigit() and int(wanted) in clinics:
        clinic_id = int(wanted)
    elif request.patient.registered_at_clinic_id in clinics:
        clinic_id = request.patient.registered_at_clinic_id
    elif len(clinics) == 1:
        clinic_id = clinics[0]
    else:
        return {}
    departments = list(
        departments_for(request.user).filter(clinic_id=clinic_id, is_active=True).values_list("pk", flat=True)
    )
    if len(departments) == 1:
        return {"clinic": clinic_id, "department": departments[0]}
    return {"clinic": clinic_id}


@patient_required
@require_GET
def find(request: PatientRequest) -> HttpResponse:
    user = request.user
    if request.GET.get("department"):
        form = FindForm(request.GET, user=user)
    else:
        choice = _default_choice(request)
        form = FindForm(choice, user=user) if "department" in choice else FindForm(initial=choice, user=user)
    context: dict[str, Any] = {"form": form}
    if form.is_bound and form.is_valid():
        clinic, department = form.cleaned_data["clinic"], form.cleaned_data["department"]
        doctor = form.cleaned_data["doctor"]
        qs = open_slots(user, department=department, doctor=doctor)
        days = calendar(qs, clinic)
        day = pick_day(days, form.cleaned_data["day"])
        params = {"clinic": clinic.pk, "department": department.pk, "doctor": doctor.pk if doctor else ""}
        context.update(
            clinic=clinic,
            department=department,
            doctor=doctor,
            days=days,
            day=day,
            day_query=urlencode(params),
            groups=by_doctor(slots_on(qs, day)) if day else [],
        )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "portal/find.html", context, status=status)


@patient_required
@require_http_methods(["GET", "POST"])
@rate_limited("booking")
def book(request: PatientRequest, slot_id: int) -> HttpResponse:
    user = request.user
    # Closed slots stay reachable (tenant-scoped) so the page can say why and offer others.
    slot = get_object_or_404(
        slots_for(user, include_closed=True).select_related("clinic", "department", "doctor__user"),
        pk=slot_id,
    )
    if request.method == "POST":
        form = BookForm(request.POST)
    else:
        # Coming from "nearest open times", the reason typed for the taken slot comes along.
        form = BookForm(initial={"reason": request.GET.get("reason", "")[:500]})
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():

            def explain(exc: DomainError) -> tuple[str | None, str] | None:
                if exc.code == "slot_full":
                    return (
                        None,
                        "Sorry, this time was taken by someone else a moment ago. Nothing was booked.",
                    )
                if exc.code == "overlap":
                    return None, overlap_message(request, slot.start, slot.end) or exc.message
                return None

            booked, status = submit_once(
                request,
                form,
                scope="book",
                about=(slot.pk,),
                write=lambda: appointment_book(
                    actor=user,
                    patient=request.patient,
                    slot=slot,
                    reason=form.cleaned_data["reason"],
                    channel=PORTAL,
                ),
                explain=explain,
            )
            if booked is not None:
                return redirect("portal:confirmation", booked)
    is_open = slots_for(user).filter(bookable_slot_q(timezone.now()), pk=slot.pk).exists()
    context = {
        "slot": slot,
        "form": form,
        "is_open": is_open,
        # Taken, started or withdrawn: the closest open times in the same department instead.
        "alternatives": [] if is_open else nearest_open_slots(user, slot),
    }
    return render(request, "portal/book.html", context, status=status)


@patient_required
@require_http_methods(["GET", "POST"])
@rate_limited("booking")
def book_first_available(request: PatientRequest, department_id: int) -> HttpResponse:
    user = request.user
    department = get_object_or_404(
        departments_for(user).filter(is_active=True, clinic__is_active=True), pk=department_id
    )
    form = BookForm(request.POST) if request.method == "POST" else BookForm()
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            booked, status = submit_once(
                request,
                form,
                scope="book_first_available",
                about=(department.pk,),
                write=lambda: appointment_book_first_available(
                    actor=user,
                    patient=request.patient,
                    department_id=department.pk,
                    reason=form.cleaned_data["reason"],
                    channel=PORTAL,
                ),
                explain=lambda exc: (
                    (None, f"Sorry, {department.name} has no open time left to book online.")
                    if exc.code == "no_slot"
                    else None
                ),
            )
            if booked is not None:
                return redirect("portal:confirmation", booked)
    context = {
        "department": department,
        "clinic": department.clinic,
        "form": form,
        "first_day": first_open_day(user, department),
    }
    return render(request, "portal/book_first_available.html", context, status=status)
