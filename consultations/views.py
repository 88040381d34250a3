"""Pages of the clinical record: the consultation panel of an appointment and the printable prescription.

The panel is one fragment (templates/consultations/panel.html) that the doctor's dashboard loads with
hx-get and whose forms post back with hx-post, each answered with the re-rendered fragment. Without
htmx the same URLs are a full page: GET renders it inside the base layout, a successful POST redirects
back to it, a refused one shows the page again with the messages beside the fields.

Access: the panel is the appointment's doctor's only (403 for everyone else who can see the
appointment, 404 for anyone who cannot). The printable prescription is for doctors of the clinic
(the prescribing doctor among them) and for the patient once it is issued; staff are refused. A doctor
without a care relationship with the patient (consultations.access) gets a form asking for the reason
first (403), which posts to break_glass and comes back.

Access log: each rendering of the panel logs the consultation and prescriptions it shows; the printable
prescription logs `record.printed`.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from opd.core.admin_mixins import attach_domain_error
from opd.core.errors import DomainError, ValidationFailed
from opd.core.models import Role
from opd.core.tenancy import require_clinical_standing, signed_in_user
from patients.models import age_on
from patients.selectors import active_allergies, active_problems, allergy_assessment, patients_for
from scheduling.models import Appointment
from scheduling.selectors import appointments_for

from .access import PRINTED, REASON_REQUIRED, VIEWED, log_reads, open_record
from .forms import BreakGlassForm, PrescriptionLineForm, RecordForm
from .models import Consultation, Prescription
from .selectors import (
    appointment_details,
    consultation_details,
    consultations_for,
    may_read_clinical_records,
    prescription_details,
    prescriptions_for,
)
from .services import (
    ALLERGY_CONFLICT,
    ITEM_FIELDS,
    OPENABLE,
    consultation_complete,
    consultation_open,
    consultation_update,
    prescription_create,
    prescription_update,
)
from .services.news2_alerts import latest_triage

NEWS2_LABELS = {
    "respiratory_rate": "Respiration rate",
    "spo2": "SpO2",
    "air_or_oxygen": "Air or oxygen",
    "systolic_bp": "Systolic blood pressure",
    "pulse": "Pulse",
    "consciousness": "Consciousness",
    "temperature": "Temperature",
}


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _panel_appointment(request: HttpRequest, appointment_id: int) -> Appointment:
    user = signed_in_user(request)
    require_clinical_standing(user)
    appointment = appointment_details(appointments_for(user)).filter(pk=appointment_id).first()
    if appointment is None:
        raise Http404("No such appointment.")
    if user.role != Role.DOCTOR or appointment.doctor.user_id != user.pk:
        raise PermissionDenied("Only the appointment's doctor works in its consultation panel.")
    return appointment


def _consultation_of(request: HttpRequest, appointment: Appointment) -> Consultation | None:
    return (
        consultation_details(consultations_for(signed_in_user(request)))
        .filter(appointment=appointment)
        .first()
    )


def _prescriptions_of(request: HttpRequest, consultation: Consultation | None) -> list[Prescription]:
    if consultation is None:
        return []
    return list(
        prescription_details(prescriptions_for(signed_in_user(request))).filter(consultation=consultation)
    )


def _render_panel(
    request: HttpRequest,
    appointment: Appointment,
    *,
    forms: dict | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    consultation = _consultation_of(request, appointment)
    auto_id = f"a{appointment.pk}-%s"
    forms = forms or {}
    patient = appointment.patient
    allergies = active_allergies(patient)
    if consultation is not None and consultation.is_draft:
        forms.setdefault("record_form", RecordForm(instance=consultation, auto_id=auto_id))
        forms.setdefault("line_form", PrescriptionLineForm(auto_id=auto_id, allergy_check=bool(allergies)))
    news2_rows = []
    if consultation is not None and consultation.news2_sub_scores is not None:
        news2_rows = [(NEWS2_LABELS[name], score) for name, score in consultation.news2_sub_scores.items()]
    prescriptions = _prescriptions_of(request, consultation)
    # Vitals the consultation opened with from the nurse's triage (unchanged since): said so on the panel.
    triage = latest_triage(appointment.pk) if consultation is not None else None
    vitals_from_triage = (
        triage
        if triage is not None
        and consultation is not None
        and triage.recorded_at == consultation.vitals_recorded_at
        else None
    )
    if consultation is not None:
        # Every rendering shows the record, after a write too: each is a read of it.
        log_reads(signed_in_user(request), VIEWED, [consultation, *prescriptions])
    # The header shows the allergies and active problems: reads, logged like the rest of the record.
    problems = active_problems(patient)
    log_reads(signed_in_user(request), VIEWED, [*allergies, *problems])
    context = {
        "appointment": appointment,
        "patient_age": age_on(patient.date_of_birth, timezone.localdate(timezone=appointment.clinic.tz)),
        "allergies": allergies,
        "allergy_assessment": allergy_assessment(patient, allergies),
        "active_problems": problems,
        "consultation": consultation,
        "prescriptions": prescriptions,
        "can_open": consultation is None and appointment.status in OPENABLE,
        "news2_rows": news2_rows,
        "news2_missing": [NEWS2_LABELS[name] for name in consultation.news2_missing] if consultation else [],
        "error": error,
        "vitals_from_triage": vitals_from_triage,
        # A form shown again with what was sent (refused): its values are not saved yet.
        "unsaved": any(form.is_bound for form in forms.values()),
        **forms,
    }
    template = "consultations/panel.html" if _is_htmx(request) else "consultations/panel_page.html"
    response = render(request, template, context, status=status)
    # One URL, two answers (fragment or page): caches and the back button must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _reloaded(request: HttpRequest, appointment: Appointment) -> Appointment:
    return _panel_appointment(request, appointment.pk)


def _after_write(request: HttpRequest, appointment: Appointment) -> HttpResponse:
    if _is_htmx(request):
        return _render_panel(request, appointment)
    return redirect("consultations:panel", appointment_id=appointment.pk)


@login_required
@require_GET
def panel(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Logged: the consultation and prescriptions shown (the appointment's doctor: no reason asked)."""
    return _render_panel(request, _panel_appointment(request, appointment_id))


@login_required
@require_POST
def panel_open(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = _panel_appointment(request, appointment_id)
    try:
        consultation_open(actor=signed_in_user(request), appointment=appointment)
    except DomainError as exc:
        return _render_panel(request, _reloaded(request, appointment), error=exc.message)
    return _after_write(request, _reloaded(request, appointment))


def _existing_consultation(request: HttpRequest, appointment: Appointment) -> Consultation:
    consultation = _consultation_of(request, appointment)
    if consultation is None:
        raise Http404("This appointment has no consultation yet.")
    return consultation


def _refused(form, exc: DomainError) -> str:
    """Field messages go beside the fields; a refusal of the whole write (a state) goes on top."""
    if exc.fields and set(exc.fields) != {"version"}:  # the version is a hidden field: say it on top
        attach_domain_error(form, exc)
        return ""
    return exc.message


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _json_error(exc: DomainError) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}, status=exc.status
    )


def _form_refusal(form) -> ValidationFailed:
    fields = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
    first = next(iter(fields.items()), ("", [""]))
    return ValidationFailed(f"{first[0]}: {first[1][0]}", fields=fields)


# The minimum record names `vitals`; on the page that is the reason field (or the readings above it).
RECORD_FIELD_MAP = {"vitals": "vitals_not_taken_reason"}


def _status_of(exc: DomainError) -> int:
    return exc.status if exc.status in (400, 409) else 400


@login_required
@require_POST
def panel_save(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Save the record's form as the draft: the autosave (consultation.js, JSON both ways) and the
    "Save draft" button (htmx or a plain form). Sent with the version it was loaded at: a stale one is
    refused (409 version_conflict), nothing written."""
    appointment = _panel_appointment(request, appointment_id)
    consultation = _existing_consultation(request, appointment)
    form = RecordForm(request.POST, auto_id=f"a{appointment.pk}-%s")
    error, status = "", 400
    if form.is_valid():
        version, values = form.values()
        try:
            saved = consultation_update(
                actor=signed_in_user(request), consultation=consultation, expected_version=version, **values
            )
        except DomainError as exc:
            if _wants_json(request):
                return _json_error(exc)
            error, status = _refused(form, exc), _status_of(exc)
        else:
            if _wants_json(request):
                clock = timezone.localtime(saved.updated_at, appointment.clinic.tz).strftime("%H:%M")
                return JsonResponse({"version": saved.version, "saved_at": clock})
            return _after_write(request, _reloaded(request, appointment))
    elif _wants_json(request):
        return _json_error(_form_refusal(form))
    return _render_panel(
        request, _reloaded(request, appointment), forms={"record_form": form}, error=error, status=status
    )


@login_required
@require_POST
def panel_prescription(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Add a medication line to the consultation's prescription (started with the first line). The
    button is in the record's one form, so what was typed in the record is saved first (a draft)."""
    appointment = _panel_appointment(request, appointment_id)
    consultation = _existing_consultation(request, appointment)
    auto_id = f"a{appointment.pk}-%s"
    record = RecordForm(request.POST, auto_id=auto_id)
    form = PrescriptionLineForm(
        request.POST, auto_id=auto_id, allergy_check=bool(active_allergies(appointment.patient))
    )
    forms = {"record_form": record, "line_form": form}
    if not (record.is_valid() & form.is_valid()):
        return _render_panel(request, _reloaded(request, appointment), forms=forms, status=400)
    version, values = record.values()
    line = {name: form.cleaned_data[name] for name in ITEM_FIELDS}
    override = form.cleaned_data.get("allergy_override_reason", "")
    user = signed_in_user(request)
    error = ""
    try:
        consultation = consultation_update(
            actor=user, consultation=consultation, expected_version=version, **values
        )
    except DomainError as exc:
        error = _refused(record, exc)
        return _render_panel(
            request, _reloaded(request, appointment), forms=forms, error=error, status=_status_of(exc)
        )
    # The record is saved now: shown again, it comes from the database (with its new version).
    forms = {"line_form": form}
    existing = _prescriptions_of(request, consultation)
    try:
        if existing:
            current = existing[0]
            lines = [{name: getattr(item, name) for name in ITEM_FIELDS} for item in current.items.all()]
            prescription_update(
                actor=user,
                prescription=current,
                items=[*lines, line],
                allergy_override_reason=override,
                expected_version=consultation.version,
            )
        else:
            prescription_create(
                actor=user,
                consultation=consultation,
                items=[line],
                allergy_override_reason=override,
                expected_version=consultation.version,
            )
    except DomainError as exc:
        if exc.code == ALLERGY_CONFLICT:
            # The allergy named on top (an alert), the override's rule beside its field.
            attach_domain_error(form, exc, with_message=False)
            error = exc.message
        else:
            error = _refused(form, _line_error(exc))
        return _render_panel(
            request, _reloaded(request, appointment), forms=forms, error=error, status=_status_of(exc)
        )
    return _after_write(request, _reloaded(request, appointment))


def _line_error(exc: DomainError) -> DomainError:
    """items.N.dose -> dose: the panel's form is the one line being added."""
    fields = {key.rsplit(".", 1)[-1]: value for key, value in exc.fields.items()}
    return type(exc)(exc.message, fields=fields, code=exc.code)


LINE_NOT_ADDED = (
    "A medication line is filled in but not added: add it to the prescription, or clear it, then "
    "complete the consultation."
)


@login_required
@require_POST
def panel_complete(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Complete with the record's form as sent: the service saves the final values, checks the minimum
    record and completes, in one transaction. Refused (a missing part, a stale version, a line typed but
    not added), nothing is written and the form comes back with what was sent and the reasons (4xx)."""
    appointment = _panel_appointment(request, appointment_id)
    consultation = _existing_consultation(request, appointment)
    auto_id = f"a{appointment.pk}-%s"
    form = RecordForm(request.POST, auto_id=auto_id)
    forms: dict = {"record_form": form}
    if PrescriptionLineForm.started_in(request.POST):
        # Never issue a half-typed line, never drop it silently: the doctor adds or clears it.
        line_form = PrescriptionLineForm(
            request.POST, auto_id=auto_id, allergy_check=bool(active_allergies(appointment.patient))
        )
        line_form.is_valid()
        line_form.add_error(None, LINE_NOT_ADDED)
        forms["line_form"] = line_form
        return _render_panel(
            request, _reloaded(request, appointment), forms=forms, error=LINE_NOT_ADDED, status=400
        )
    if not form.is_valid():
        return _render_panel(request, _reloaded(request, appointment), forms=forms, status=400)
    version, values = form.values()
    try:
        consultation_complete(
            actor=signed_in_user(request), consultation=consultation, expected_version=version, **values
        )
    except DomainError as exc:
        attach_domain_error(form, exc, RECORD_FIELD_MAP, with_message=False)
        return _render_panel(
            request, _reloaded(request, appointment), forms=forms, error=exc.message, status=_status_of(exc)
        )
    return _after_write(request, _reloaded(request, appointment))


@login_required
@require_GET
def prescription_print(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in_user(request)
    require_clinical_standing(user)
    if not may_read_clinical_records(user):
        raise PermissionDenied("Prescriptions are open to doctors and to the patient.")
    prescription = prescription_details(prescriptions_for(user)).filter(pk=pk).first()
    if prescription is None:
        raise Http404("No such prescription.")
    asked = _open_or_ask(request, prescription, author_id=prescription.doctor.user_id)
    if isinstance(asked, HttpResponse):
        return asked
    log_reads(user, PRINTED, [prescription], reason=asked)
    return render(request, "consultations/prescription_print.html", {"prescription": prescription})


# Break the glass on pages ----------------------------------------------------------------------------


def _ask_for_reason(
    request: HttpRequest, patient_id: int, form: BreakGlassForm | None = None
) -> HttpResponse:
    form = form or BreakGlassForm(initial={"next": request.get_full_path()})
    context = {
        "form": form,
        "patient_id": patient_id,
        "months": settings.OPD_CARE_RELATIONSHIP_MONTHS,
        "minutes": settings.OPD_BREAK_GLASS_MINUTES,
    }
    # 403: the record stays closed until a reason is given; the page says how to open it.
    return render(request, "consultations/break_glass.html", context, status=403)


def _open_or_ask(request: HttpRequest, row, *, author_id: int | None) -> str | HttpResponse:
    """The reason the access stands on ("" within a care relationship), or the page asking for one."""
    try:
        return open_record(
            signed_in_user(request),
            patient_id=row.patient_id,
            organization_id=row.organization_id,
            clinic_id=row.clinic_id,
            author_id=author_id,
        )
    except DomainError as exc:
        if exc.code != REASON_REQUIRED:
            raise
        return _ask_for_reason(request, row.patient_id)


@login_required
@require_POST
def break_glass(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The reason form's answer: records the reason (flagged for review) and goes back to the record."""
    user = signed_in_user(request)
    require_clinical_standing(user)
    if user.role != Role.DOCTOR:
        raise PermissionDenied("Only clinicians open records with a stated reason.")
    patient = patients_for(user).filter(pk=patient_id).first()
    if patient is None:
        raise Http404("No such patient.")
    form = BreakGlassForm(request.POST)
    if not form.is_valid():
        return _ask_for_reason(request, patient_id, form)
    try:
        open_record(
            user,
            patient_id=patient.pk,
            organization_id=patient.organization_id,
            clinic_id=None,
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        form.add_error("reason", exc.message)
        return _ask_for_reason(request, patient_id, form)
    target = form.cleaned_data.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "/"
    return redirect(target)
