"""The manage-booking link (/m/<token>/): one appointment, without signing in.

The signed token (notifications.links) is the whole permission and reaches only its own appointment:
a forged, altered or other appointment's token answers 404, an expired one 410, each with a page that
says what to do. Cancel and reschedule go through the scheduling services like every other door, with
the patient as the actor (their account when they have one) and the patient's cut-off applied
(as_patient), audited with channel "manage_link". The writes are rate-limited like the portal's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from notifications.links import appointment_for_manage_token
from opd.core.errors import DomainError
from opd.core.models import Role, User
from opd.core.ratelimit import rate_limited
from opd.core.templatetags.opd import local_time
from scheduling.models import Appointment
from scheduling.services import appointment_cancel, appointment_reschedule

from .. import ics
from ..forms import CancelForm, RescheduleForm, add_domain_error
from ..selectors import calendar, change_window, manage_link_open_slots, manage_link_slots, slots_on
from .common import by_doctor, pick_day

MANAGE_LINK = "manage_link"


def _refused(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(
        request,
        "portal/manage_refused.html",
        {"message": exc.message, "expired": exc.status == 410},
        status=exc.status,
    )


def _with_appointment(view: Any) -> Any:
    """Resolve the token to its appointment, or answer the refusal page (404 / 410)."""

    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        try:
            appointment = appointment_for_manage_token(token)
        except DomainError as exc:
            return _refused(request, exc)
        appointment.window = change_window(appointment)  # type: ignore[attr-defined]  # for the template
        response: HttpResponse = view(request, token, appointment)
        # The address is the key: no shared cache keeps the page, no search engine lists it.
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex"
        return response

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _actor(appointment: Appointment) -> User | None:
    """The patient's own account when they have an active one; None for a patient without (the service
    then applies the patient's rules because of as_patient, and the audit row says manage_link)."""
    user = appointment.patient.user
    if user is not None and user.is_active and user.role == Role.PATIENT:
        return user
    return None


def _urls(token: str) -> dict[str, str]:
    return {
        "back_url": reverse("manage:page", args=[token]),
        "cancel_url": reverse("manage:cancel", args=[token]),
        "reschedule_url": reverse("manage:reschedule", args=[token]),
        "ics_url": reverse("manage:ics", args=[token]),
    }


@require_GET
@_with_appointment
def page(request: HttpRequest, token: str, appointment: Appointment) -> HttpResponse:
    return render(request, "portal/manage.html", {"appointment": appointment, **_urls(token)})


@require_GET
@_with_appointment
def calendar_file(request: HttpRequest, token: str, appointment: Appointment) -> HttpResponse:
    return ics.response(
        request, appointment, url=request.build_absolute_uri(reverse("manage:page", args=[token]))
    )


@require_http_methods(["GET", "POST"])
@rate_limited("booking")
@_with_appointment
def cancel(request: HttpRequest, token: str, appointment: Appointment) -> HttpResponse:
    form = CancelForm(request.POST) if request.method == "POST" else CancelForm()
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                appointment_cancel(
                    actor=_actor(appointment),
                    appointment=appointment,
                    reason=form.cleaned_data["reason"],
                    channel=MANAGE_LINK,
                    as_patient=True,
                )
            except DomainError as exc:
                add_domain_error(form, exc)
                status = exc.status
            else:
                when = local_time(appointment.start, appointment.clinic)
                messages.success(request, f"Your appointment on {when} is cancelled.")
                return redirect("manage:page", token)
    context = {"appointment": appointment, "form": form, **_urls(token)}
    return render(request, "portal/cancel.html", context, status=status)


def _wanted_day(request: HttpRequest) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
@rate_limited("booking")
@_with_appointment
def reschedule(request: HttpRequest, token: str, appointment: Appointment) -> HttpResponse:
    choices = manage_link_slots(appointment, include_closed=True)
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
            wanted_day = slot.date
            try:
                moved = appointment_reschedule(
                    actor=_actor(appointment),
                    appointment=appointment,
                    slot=slot,
                    channel=MANAGE_LINK,
                    as_patient=True,
                )
            except DomainError as exc:
                if exc.code == "slot_full":
                    form.add_error(
                        "slot", "Sorry, that time was taken by someone else a moment ago; choose another."
                    )
                else:
                    add_domain_error(form, exc)
                status = exc.status
            else:
                messages.success(
                    request, f"Your appointment is moved to {local_time(moved.start, moved.clinic)}."
                )
                return redirect("manage:page", token)
    context: dict[str, Any] = {"appointment": appointment, "form": form, **_urls(token)}
    if appointment.window.allowed:  # type: ignore[attr-defined]  # set by _with_appointment
        qs = manage_link_open_slots(appointment, timezone.now())
        days = calendar(qs, appointment.clinic)
        day = pick_day(days, wanted_day)
        context.update(days=days, day=day, groups=by_doctor(slots_on(qs, day)) if day else [])
    return render(request, "portal/reschedule.html", context, status=status)
