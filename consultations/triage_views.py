"""Pages for nurses: a clinic's triage page, its live fragment, the vitals form's POST, and the summary of
the patient with the doctor that the staff view of a doctor's queue loads.

Who: a nurse at the clinic (Membership.is_nurse), the clinic's doctors, superusers
(consultations.services.triage.may_triage_at); reception-only staff and admins 403; another
organization's clinic or appointment 404. A nurse sees vitals, NEWS2, allergies and the reason the
patient gave for the visit, never the doctor's notes. Every rendering logs what it shows.

The triage page is live like the queue pages: static/js/queue.js follows the clinic's queue socket and
re-fetches the board (it waits while a nurse is typing in one of its forms), and shows the re-score
reminders and NEWS2 alerts the socket pushes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from opd.core.admin_mixins import attach_domain_error
from opd.core.errors import DomainError
from opd.core.models import Clinic, Role, User
from opd.core.tenancy import clinics_for, require_clinical_standing, signed_in_user
from patients.models import age_on
from patients.selectors import active_allergies, active_problems, allergy_assessment
from scheduling.models import Appointment
from scheduling.selectors import CLINIC_QUEUE, appointments_for, queue_name, queue_version

from .access import VIEWED, log_reads
from .forms import TriageVitalsForm
from .models import VITAL_FIELDS, Consultation, TriageObservation
from .services import may_triage_at, triage_record
from .services.triage import NOT_A_NURSE
from .triage_selectors import latest_news2, waiting_for_triage

# The readings as the summary names them (the model's own labels).
VITAL_LABELS = {name: str(TriageObservation._meta.get_field(name).verbose_name) for name in VITAL_FIELDS}  # type: ignore[union-attr]


def _readings(row: TriageObservation | Consultation) -> list[tuple[str, str]]:
    """(label, value) of each reading taken, as a person reads them (yes/no, the ACVPU word)."""
    shown = []
    for name in VITAL_FIELDS:
        value = getattr(row, name)
        if value in (None, "") or (name == "hypercapnic_respiratory_failure" and not value):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif name == "consciousness":
            value = row.get_consciousness_display()
        shown.append((VITAL_LABELS[name], str(value)))
    return shown


def _check_triage(user: User, clinic_id: int) -> None:
    if not may_triage_at(user, clinic_id):
        raise PermissionDenied(NOT_A_NURSE)


def _triage_clinic(request: HttpRequest, clinic_id: int) -> Clinic:
    user = signed_in_user(request)
    require_clinical_standing(user)
    if user.role == Role.PATIENT:
        raise PermissionDenied(NOT_A_NURSE)
    clinic = clinics_for(user).filter(pk=clinic_id).first()
    if clinic is None:
        raise Http404("No such clinic.")
    _check_triage(user, clinic.pk)
    return clinic


def _triage_appointment(request: HttpRequest, appointment_id: int) -> Appointment:
    user = signed_in_user(request)
    require_clinical_standing(user)
    if user.role == Role.PATIENT:
        raise PermissionDenied(NOT_A_NURSE)
    appointment = (
        appointments_for(user)
        .select_related("patient", "clinic", "department", "doctor__user")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise Http404("No such appointment.")
    _check_triage(user, appointment.clinic_id)
    return appointment


def _triage_context(
    request: HttpRequest, clinic: Clinic, *, bound: dict[int, TriageVitalsForm] | None = None
) -> dict:
    now = timezone.now()
    # The version first: rows read after it are at least that new (queue.js refreshes on later events).
    version = queue_version(queue_name(CLINIC_QUEUE, clinic.pk))
    rows = waiting_for_triage(clinic, now=now)
    user = signed_in_user(request)
    shown = []
    for appt in rows:
        appt.allergies = active_allergies(appt.patient)  # type: ignore[attr-defined]
        appt.allergy_assessment = allergy_assessment(appt.patient, appt.allergies)  # type: ignore[attr-defined]
        appt.triage_form = (bound or {}).get(appt.pk) or TriageVitalsForm(auto_id=f"t{appt.pk}-%s")  # type: ignore[attr-defined]
        shown += appt.allergies  # type: ignore[attr-defined]
        if appt.news2 is not None and appt.news2.observation is not None:  # type: ignore[attr-defined]
            shown.append(appt.news2.observation)  # type: ignore[attr-defined]
    log_reads(user, VIEWED, shown, via="triage")
    return {
        "clinic": clinic,
        "rows": rows,
        "now": now,
        "version": version,
        "open_form": next(iter(bound), None) if bound else None,
        "board_url": reverse("consultations:triage-board", args=[clinic.pk]),
        "ws_path": f"/ws/queue/clinic/{clinic.pk}/",
        "ws_base": settings.WEBSOCKET_BASE_URL,
    }


@login_required
@require_GET
def triage(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The clinic's checked-in patients with their last NEWS2, how long ago, re-score due, and a vitals
    form each."""
    clinic = _triage_clinic(request, clinic_id)
    return render(request, "consultations/triage.html", _triage_context(request, clinic))


@login_required
@require_GET
def triage_board(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Fragment: the triage list (re-fetched by queue.js on every change of the clinic's queue)."""
    clinic = _triage_clinic(request, clinic_id)
    return render(request, "consultations/_triage_board.html", _triage_context(request, clinic))


@login_required
@require_POST
def triage_record_view(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The vitals form of one patient: recorded through triage_record, back to the triage page; refused
    input is shown beside its fields (400)."""
    appointment = _triage_appointment(request, appointment_id)
    form = TriageVitalsForm(request.POST, auto_id=f"t{appointment.pk}-%s")
    if form.is_valid():
        try:
            observation = triage_record(
                actor=signed_in_user(request), appointment=appointment, **form.cleaned_data
            )
        except DomainError as exc:
            if exc.fields and set(exc.fields) <= set(VITAL_FIELDS):
                attach_domain_error(form, exc)
            else:
                messages.error(request, exc.message)
                return redirect("consultations:triage", clinic_id=appointment.clinic_id)
        else:
            token = appointment.token_label or f"#{appointment.pk}"
            response = observation.news2_response
            if response is not None:
                messages.success(
                    request,
                    f"Vitals recorded for token {token}: NEWS2 {observation.news2_total}, {response.title.lower()}.",
                )
            else:
                missing = ", ".join(observation.news2_missing).replace("_", " ")
                messages.success(request, f"Vitals recorded for token {token}; NEWS2 still needs {missing}.")
            return redirect(
                reverse("consultations:triage", args=[appointment.clinic_id]) + f"#triage-{appointment.pk}"
            )
    context = _triage_context(request, appointment.clinic, bound={appointment.pk: form})
    return render(request, "consultations/triage.html", context, status=400)


@login_required
@require_GET
def summary(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """What a nurse sees of the patient with the doctor (the staff view of a doctor's queue loads it):
    age, sex, allergies, the visit reason, the latest vitals and NEWS2. Never the doctor's notes."""
    appointment = _triage_appointment(request, appointment_id)
    user = signed_in_user(request)
    patient = appointment.patient
    allergies = active_allergies(patient)
    problems = active_problems(patient)
    latest = latest_news2([appointment.pk]).get(appointment.pk)
    vitals_of: TriageObservation | Consultation | None = None
    if latest is not None:
        if latest.observation is not None:
            vitals_of = latest.observation
        else:
            # Only the vitals columns are read: the notes are never loaded for this page.
            vitals_of = Consultation.objects.only(
                "id", "organization_id", "clinic_id", "patient_id", "appointment_id", *VITAL_FIELDS
            ).get(appointment=appointment)
    log_reads(
        user, VIEWED, [*allergies, *problems, *([vitals_of] if vitals_of is not None else [])], via="summary"
    )
    context = {
        "appointment": appointment,
        "patient_age": age_on(patient.date_of_birth, timezone.localdate(timezone=appointment.clinic.tz)),
        "allergies": allergies,
        "allergy_assessment": allergy_assessment(patient, allergies),
        "problems": problems,
        "news2": latest,
        "vitals": _readings(vitals_of) if vitals_of is not None else [],
        "triage_url": reverse("consultations:triage", args=[appointment.clinic_id]),
    }
    template = (
        "consultations/summary.html"
        if request.headers.get("HX-Request") == "true"
        else "consultations/summary_page.html"
    )
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
