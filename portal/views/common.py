"""What the portal's pages share: the patients-only gate, running a write once per form, the calendar."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from opd.core.errors import DomainError
from opd.core.idempotency import fingerprint, run_idempotent
from opd.core.models import User
from opd.core.templatetags.opd import local_time
from opd.core.tenancy import signed_in_user
from patients.models import Patient
from patients.selectors import patients_for
from scheduling.models import ACTIVE_STATUSES, Appointment, BookingChannel, Slot

from ..forms import TokenForm, add_domain_error
from ..selectors import CalendarDay, my_appointments

PORTAL = BookingChannel.PORTAL
P = ParamSpec("P")


class PatientRequest(HttpRequest):
    """The request a view behind `patient_required` gets: its user is a signed-in patient, and
    `patient` is their record. The decorator checks both before the view runs."""

    user: User
    patient: Patient


def patient_required(
    view: Callable[Concatenate[PatientRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Signed in, a patient, with a patient record; `request.patient` is that record."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        user = signed_in_user(request)
        if not user.is_patient:
            # Staff, admins and doctors have their own pages; the portal is not for them.
            return redirect("portal:after-login")
        patient = patients_for(user).first()
        if patient is None:
            return render(request, "portal/no_record.html", status=403)
        # The one place the promise of PatientRequest is made true: the user is checked above.
        patient_request = cast(PatientRequest, request)
        patient_request.patient = patient
        return view(patient_request, *args, **kwargs)

    return login_required(wrapper)


def run_once(
    request: PatientRequest, form: TokenForm, *, scope: str, about: tuple, write: Callable[[], Appointment]
) -> int:
    """Run `write` once per form token and return the id of the appointment it touched.

    The token is the idempotency key (opd.core.idempotency): a second submit of the same form waits for
    the first, then gets its answer instead of a second effect. `about` (what the form acts on) makes
    the fingerprint, so a token replayed against something else is refused. A refusal (DomainError)
    stores nothing: the patient may fix the reason and submit the same form again.
    """

    def perform() -> tuple[int, dict]:
        return 200, {"appointment": write().pk}

    outcome = run_idempotent(
        user=request.user,
        scope=f"portal.{scope}",
        key=form.cleaned_data["token"],
        digest=fingerprint(f"portal.{scope}", *about),
        perform=perform,
    )
    return outcome.body["appointment"]


def submit_once(
    request: PatientRequest,
    form: TokenForm,
    *,
    scope: str,
    about: tuple,
    write: Callable[[], Appointment],
    explain: Callable[[DomainError], tuple[str | None, str] | None] | None = None,
) -> tuple[int | None, int]:
    """A valid form's write, once (run_once): answers (the appointment's id, 200), or (None, the status of
    the refusal) with the refusal beside the form. `explain` words a refusal for the patient as (field,
    message), or None to show the service's own message."""
    try:
        return run_once(request, form, scope=scope, about=about, write=write), 200
    except DomainError as exc:
        worded = explain(exc) if explain else None
        if worded is None:
            add_domain_error(form, exc)
        else:
            form.add_error(*worded)
        return None, exc.status


def overlap_message(request: PatientRequest, start: dt.datetime, end: dt.datetime) -> str | None:
    """The booking service names the clash in UTC; the patient gets their own appointment, clinic time."""
    clash = (
        my_appointments(request.user).filter(status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start).first()
    )
    if clash is None:
        return None
    return (
        f"You already have an appointment then ({local_time(clash.start, clash.clinic)}, "
        f"{clash.department.name}); choose another time or change that appointment first."
    )


def pick_day(days: list[CalendarDay], wanted: dt.date | None) -> dt.date | None:
    """The wanted day if it has open times, else the first day that has."""
    open_days = [d.date for d in days if d.open_count]
    if wanted in open_days:
        return wanted
    return open_days[0] if open_days else None


def by_doctor(slots: list[Slot]) -> list[tuple[Any, list[Slot]]]:
    """A day's slots (ordered by doctor) as (doctor, [slots]) groups for the page."""
    return [(doctor, list(group)) for doctor, group in itertools.groupby(slots, key=lambda s: s.doctor)]
