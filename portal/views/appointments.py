"""My appointments: the list, one appointment, its calendar file, cancel and reschedule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from opd.core.errors import DomainError
from opd.core.templatetags.opd import local_time
from scheduling.models import Appointment
from scheduling.selectors import ChangeWindow, slots_for
from scheduling.services import appointment_cancel, appointment_reschedule

from .. import ics
from ..forms import CancelForm, RescheduleForm
from ..selectors import calendar, change_window, my_appointments, open_slots, slots_on, split_appointments
from .common import (
    PORTAL,
    PatientRequest,
    by_doctor,
    overlap_message,
    patient_required,
    pick_day,
    submit_once,
)

PAST_PER_PAGE = 20


def _show_window(appointment: Appointment, now: dt.datetime | None = None) -> ChangeWindow:
    """Put the appointment's change window where its template reads it (`appointment.window`)."""
    window = change_window(appointment, now)
    appointment.window = window  # type: ignore[attr-defined]  # for the template, not a model field
    return window


def _with_windows(appointments: Iterable[Appointment], now: dt.datetime) -> list[Appointment]:
    rows = list(appointments)
    for appointment in rows:
        _show_window(appointment, now)
    return rows


@patient_required
@require_GET
def appointments(request: PatientRequest) -> HttpResponse:
    now = timezone.now()
    upcoming, past = split_appointments(request.user, now)
    past_page = Paginator(past, PAST_PER_PAGE).get_page(request.GET.get("page"))
    context = {"upcoming": _with_windows(upcoming, now), "past_page": past_page}
    return render(request, "portal/appointments.html", context)


def _appointment_page(request: PatientRequest, pk: int, *, confirmed: bool) -> HttpResponse:
    appointment = get_object_or_404(my_appointments(request.user), pk=pk)
    _show_window(appointment)
    return render(request, "portal/appointment.html", {"appointment": appointment, "confirmed": confirmed})


@patient_required
@require_GET
def appointment_detail(request: PatientRequest, pk: int) -> HttpResponse:
    return _appointment_page(request, pk, confirmed=False)


@patient_required
@require_GET
def confirmation(request: PatientRequest, pk: int) -> HttpResponse:
    return _appointment_page(request, pk, confirmed=True)


@patient_required
@require_GET
def appointment_calendar(request: PatientRequest, pk: int) -> HttpResponse:
    appointment = get_object_or_404(my_appointments(request.user), pk=pk)
    return ics.response(request, appointment)


@patient_required
@require_http_methods(["GET", "POST"])
def cancel(request: PatientRequest, pk: int) -> HttpResponse:
    user = request.user
    appointment = get_object_or_404(my_appointments(user), pk=pk)
    form = CancelForm(request.POST) if request.method == "POST" else CancelForm()
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            # Past the cut-off the service says why (code cutoff_passed); shown above the form.
            done, status = submit_once(
                request,
                form,
                scope="cancel",
                about=(appointment.pk,),
                write=lambda: appointment_cancel(
                    actor=user,
                    appointment=appointment,
                    reason=form.cleaned_data["reason"],
                    channel=PORTAL,
                ),
            )
            if done is not None:
                when = local_time(appointment.start, appointment.clinic)
                messages.success(request, f"Your appointment on {when} is cancelled.")
                return redirect("portal:appointments")
    _show_window(appointment)
    return render(request, "portal/cancel.html", {"appointment": appointment, "form": form}, status=status)


def _wanted_day(request: HttpRequest) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return None


@patient_required
@require_http_methods(["GET", "POST"])
def reschedule(request: PatientRequest, pk: int) -> HttpResponse:
    user = request.user
    appointment = get_object_or_404(my_appointments(user), pk=pk)
    # Any slot of the department in the tenant: the service says why a closed or full one is refused.
    choices = slots_for(user, include_closed=True).filter(department_id=appointment.department_id)
    form = (
        RescheduleForm(request.POST, slots=choices)
        if request.method == "POST"
        else RescheduleForm(slots=choices)
    )
    status = 200
    wanted_day = _wanted_day(request)
    if form.is_bound:
        status = 400
        if form.is_valid():
            slot = form.cleaned_data["slot"]
            wanted_day = slot.date  # after a refusal, show that day's other times

            def explain(exc: DomainError) -> tuple[str | None, str] | None:
                if exc.code == "slot_full":
                    return "slot", "Sorry, that time was taken by someone else a moment ago; choose another."
                if exc.code == "overlap":
                    return "slot", overlap_message(request, slot.start, slot.end) or exc.message
                return None

            done, status = submit_once(
                request,
                form,
                scope="reschedule",
                about=(appointment.pk, slot.pk),
                write=lambda: appointment_reschedule(
                    actor=user, appointment=appointment, slot=slot, channel=PORTAL
                ),
                explain=explain,
            )
            if done is not None:
                moved = my_appointments(user).get(pk=appointment.pk)
                messages.success(
                    request, f"Your appointment is moved to {local_time(moved.start, moved.clinic)}."
                )
                return redirect("portal:appointment", appointment.pk)
    window = _show_window(appointment)
    context: dict[str, Any] = {"appointment": appointment, "form": form}
    if window.allowed:
        qs = open_slots(user, department=appointment.department, exclude_slot_id=appointment.slot_id)
        days = calendar(qs, appointment.clinic)
        day = pick_day(days, wanted_day)
        context.update(days=days, day=day, groups=by_doctor(slots_on(qs, day)) if day else [])
    return render(request, "portal/reschedule.html", context, status=status)
