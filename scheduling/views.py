"""Pages of the live queue: the doctor's dashboard (and a doctor's queue for staff), the waiting rooms.

Server-rendered first: the queue is HTML and every action is a plain POST form that calls the service and
redirects back with a message, so the pages work without JavaScript. static/js/queue.js adds the live
part: it listens on the queue's websocket and re-fetches the fragments below when the queue changes.

Who may see what (scheduling.selectors.doctor_queue_access / clinic_queue_access): a doctor their own
queue; admins and staff the queues of doctors at their clinics and their clinics' waiting rooms. Doctors
call next, start and complete; staff may also skip, call again and mark no-shows.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from opd.core.errors import DomainError, NotFound, PermissionDenied
from opd.core.models import Role
from opd.core.tenancy import nurse_clinic_ids_for, require_clinical_standing, signed_in_user
from scheduling.access import log_queue_view

from .models import Appointment, ApprovalStatus, Doctor
from .selectors import (
    CLINIC_QUEUE,
    DOCTOR_QUEUE,
    appointments_for,
    clinic_day,
    clinic_queue_access,
    decorate_queue_rows,
    doctor_clinics,
    doctor_day,
    doctor_queue_access,
    doctor_tomorrow,
    queue_clinics_for,
    queue_name,
    queue_state,
    queue_version,
)
from .services import (
    appointment_check_in,
    appointment_complete,
    appointment_mark_no_show,
    appointment_recall,
    appointment_skip,
    appointment_start,
    appointment_undo_no_show,
    appointment_undo_skip,
    queue_call_next,
    skip_undo_deadline,
    undo_deadline,
)

# Action name in the URL -> (service, who may, message). Who: "doctor" the appointment's doctor, "clinic"
# that doctor or admins and staff, "staff" admins and staff. A doctor only acts on their own patients.
ACTIONS = {
    "check-in": (appointment_check_in, "staff", "Checked in with token {token}."),
    "start": (appointment_start, "doctor", "Consultation started with token {token}."),
    "complete": (appointment_complete, "doctor", "Token {token} completed."),
    "no-show": (appointment_mark_no_show, "clinic", "Token {token} marked as no-show."),
    "skip": (appointment_skip, "clinic", "Token {token} moved behind the next patient."),
    "recall": (appointment_recall, "clinic", "Token {token} called again."),
    "undo-no-show": (appointment_undo_no_show, "clinic", "Token {token}: no-show undone, back in the queue."),
    "undo-skip": (appointment_undo_skip, "clinic", "Token {token}: skip undone, back in their place."),
}

# The code of scheduling's completion check refusal that consultations registers (an appointment is completed
# with its consultation record): the page sends the doctor to the record.
CONSULTATION_REQUIRED = "consultation_required"

# Actions that are hard to take back ask first: without JavaScript the POST answers a confirmation page
# whose form posts again with confirmed=1; queue.js asks in a dialog instead and sends confirmed=1 at once.
CONFIRM = {
    "no-show": (
        "Mark as no-show",
        "Mark {token} ({name}) as no-show?",
        "They leave the queue. You can undo it for {minutes} minutes.",
    ),
    "skip": (
        "Skip",
        "Skip {token} ({name})?",
        "They go back behind the next patient waiting and are no longer called. "
        "You can undo it for {minutes} minutes.",
    ),
}


def _access(check, user, pk: int):
    try:
        return check(user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc


def _panel_url(appointment: Appointment | None) -> str | None:
    """The consultations app's panel (vitals, NEWS2, notes) for the patient with the doctor, if that app
    provides one. Reversed by name only: scheduling does not import consultations."""
    if appointment is None:
        return None
    try:
        return reverse("consultations:panel", args=[appointment.pk])
    except NoReverseMatch:
        return None


def _summary_url(appointment: Appointment | None) -> str | None:
    """The consultations app's summary for nurses (vitals, NEWS2, allergies, visit reason; no notes)."""
    if appointment is None:
        return None
    try:
        return reverse("consultations:summary", args=[appointment.pk])
    except NoReverseMatch:
        return None


def triage_url(clinic_id: int) -> str | None:
    """The consultations app's triage page of a clinic, reversed by name (scheduling does not import it)."""
    try:
        return reverse("consultations:triage", args=[clinic_id])
    except NoReverseMatch:
        return None


def _is_nurse_at(request: HttpRequest, clinic_id: int | None) -> bool:
    if clinic_id is None:
        return False
    clinics = nurse_clinic_ids_for(signed_in_user(request))
    return clinics is None or clinic_id in clinics


def _socket(kind: str, pk: int) -> dict[str, str]:
    return {"ws_path": f"/ws/queue/{kind}/{pk}/", "ws_base": settings.WEBSOCKET_BASE_URL}


def _doctor_context(request: HttpRequest, doctor: Doctor) -> dict:
    now = timezone.now()
    # The version first: the rows read after it are at least that new (a later event refreshes them).
    version = queue_version(queue_name(DOCTOR_QUEUE, doctor.pk))
    line = doctor_day(doctor, now=now)
    tomorrow = doctor_tomorrow(doctor, now=now)
    log_queue_view(
        signed_in_user(request),
        doctor,
        appointments=[
            *line.in_consultation,
            *line.called,
            *line.waiting,
            *line.expected,
            *line.done,
            *tomorrow,
        ],
        via="page",
    )
    # Each patient's latest NEWS2 and its clinical response (registered by the consultations app).
    decorate_queue_rows([*line.in_consultation, *line.called, *line.waiting])
    clinics = doctor_clinics(doctor)
    focus = line.current or (line.called[0] if line.called else None)
    clinic = clinics[0] if clinics else None
    is_doctor = doctor.user_id == request.user.pk or request.user.is_superuser
    is_nurse_focus = focus is not None and _is_nurse_at(request, focus.clinic_id)
    colleagues = (
        Doctor.objects.filter(
            departments__in=doctor.departments.all(), approval_status=ApprovalStatus.APPROVED
        )
        .exclude(pk=doctor.pk)
        .exists()
    )
    # No-shows and skips still within the undo window (services.queue.appointment_undo_no_show and
    # appointment_undo_skip have the rules; a refusal there is shown as a message). Whoever sees this
    # page may mark and skip, so may undo.
    undoable = [
        {
            "appt": appt,
            "until": until,
            "what": "marked as no-show",
            "at": appt.no_show_at,
            "action": "undo-no-show",
        }
        for appt in line.done
        if (until := undo_deadline(appt)) is not None and now <= until
    ] + [
        {"appt": appt, "until": until, "what": "skipped", "at": appt.skipped_at, "action": "undo-skip"}
        for appt in line.waiting
        if (until := skip_undo_deadline(appt)) is not None and now <= until
    ]
    return {
        "doctor": doctor,
        "line": line,
        "tomorrow": tomorrow,
        "undoable": undoable,
        "undo_minutes": settings.OPD_UNDO_MINUTES,
        "version": version,
        "now": now,
        "clinic": clinic,
        "day_label": f"{timezone.localtime(now, clinic.tz):%a %d %b %Y}" if clinic else "",
        "focus": focus,
        # Also with the doctor, besides the one shown first (someone started out of turn, say).
        "others": [a for a in (*line.in_consultation, *line.called) if a is not focus],
        # What the current-patient fragment shows; queue.js re-fetches it only when this changes.
        "focus_key": (
            f"{focus.pk}:{queue_state(focus)}:{focus.called_at}" if focus else f"none:{len(line.waiting)}"
        ),
        # The doctor works in the consultation panel; a nurse at the patient's clinic sees the summary
        # (vitals, NEWS2, allergies, the visit reason, never the doctor's notes); reception neither.
        "panel_url": _panel_url(focus) if doctor.user_id == request.user.pk else None,
        "summary_url": _summary_url(focus) if not is_doctor and focus and is_nurse_focus else None,
        "triage_url": triage_url(clinic.pk)
        if clinic and not is_doctor and _is_nurse_at(request, clinic.pk)
        else None,
        "is_doctor": is_doctor,
        "can_pool": is_doctor and colleagues,
        "page_url": _page_url(doctor, request),
        "board_url": reverse("queue:doctor-board", args=[doctor.pk]),
        "current_url": reverse("queue:doctor-current", args=[doctor.pk]),
        **_socket(DOCTOR_QUEUE, doctor.pk),
    }


def _page_url(doctor: Doctor, request: HttpRequest) -> str:
    if doctor.user_id == request.user.pk:
        return reverse("queue:dashboard")
    return reverse("queue:doctor", args=[doctor.pk])


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The signed-in doctor's queue today. Staff and admins are sent to their waiting rooms."""
    user = signed_in_user(request)
    require_clinical_standing(user)
    doctor = Doctor.objects.select_related("user").filter(user=user).first()
    if doctor is None:
        if user.is_clinic_staff:
            return redirect("queue:waiting-rooms")
        raise DjangoPermissionDenied("Only doctors have a queue.")
    return render(request, "scheduling/dashboard.html", _doctor_context(request, doctor))


@login_required
@require_GET
def doctor_queue(request: HttpRequest, pk: int) -> HttpResponse:
    doctor = _access(doctor_queue_access, request.user, pk)
    if doctor.user_id == request.user.pk:
        return redirect("queue:dashboard")
    return render(request, "scheduling/dashboard.html", _doctor_context(request, doctor))


@login_required
@require_GET
def doctor_board(request: HttpRequest, pk: int) -> HttpResponse:
    """Fragment: the waiting line, expected and done lists (re-fetched by queue.js)."""
    doctor = _access(doctor_queue_access, request.user, pk)
    return render(request, "scheduling/_board.html", _doctor_context(request, doctor))


@login_required
@require_GET
def doctor_current(request: HttpRequest, pk: int) -> HttpResponse:
    """Fragment: the patient with the doctor (re-fetched by queue.js only when that patient changes)."""
    doctor = _access(doctor_queue_access, request.user, pk)
    return render(request, "scheduling/_current.html", _doctor_context(request, doctor))


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = fallback
    return redirect(target)


@login_required
@require_POST
def call_next(request: HttpRequest, pk: int) -> HttpResponse:
    user = signed_in_user(request)
    doctor = _access(doctor_queue_access, user, pk)
    if doctor.user_id != user.pk and not user.is_superuser:
        raise DjangoPermissionDenied("Doctors call their own next patient.")
    try:
        called = queue_call_next(actor=user, doctor=doctor, pool=request.POST.get("pool") == "1")
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        called = Appointment.objects.select_related("patient", "department").get(pk=called.pk)
        messages.success(request, f"Called token {called.token_label}: {called.patient.full_name}.")
    return _back(request, reverse("queue:dashboard"))


@login_required
@require_POST
def appointment_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, who, done = ACTIONS[action]
    user = signed_in_user(request)
    require_clinical_standing(user)
    appointment = (
        appointments_for(user).select_related("doctor", "department").filter(pk=pk).first()
        if user.is_superuser or user.role in (Role.ADMIN, Role.STAFF, Role.DOCTOR)
        else None
    )
    if appointment is None:
        raise Http404("No such appointment.")
    is_own = appointment.doctor.user_id == user.pk or user.is_superuser
    is_staff = user.is_clinic_staff
    allowed = {"doctor": is_own, "staff": is_staff}.get(who, is_own or is_staff)
    if not allowed:
        raise DjangoPermissionDenied("You may not do this to this appointment.")
    fallback = (
        reverse("queue:dashboard")
        if appointment.doctor.user_id == user.pk
        else reverse("queue:doctor", args=[appointment.doctor_id])
    )
    if action in CONFIRM and request.POST.get("confirmed") != "1":
        return _confirm(request, appointment, action, fallback)
    try:
        changed = service(actor=user, appointment=appointment)
    except DomainError as exc:
        messages.error(request, exc.message)
        panel = _panel_url(appointment)
        if exc.code == CONSULTATION_REQUIRED and panel:
            # Completed only with its consultation record (consultations registers that check): the
            # message says so on the record itself, where the doctor completes it.
            return redirect(panel)
    else:
        label = changed.token_label or f"#{changed.pk}"
        message = done.format(token=label)
        if action in ("no-show", "skip"):
            message += f" Undo it from the top of the queue within {settings.OPD_UNDO_MINUTES} minutes."
        messages.success(request, message)
    return _back(request, fallback)


def _confirm(request: HttpRequest, appointment: Appointment, action: str, fallback: str) -> HttpResponse:
    """The no-JavaScript confirmation step: the same form again, with confirmed=1, and a way back."""
    appointment = Appointment.objects.select_related("patient", "department").get(pk=appointment.pk)
    button, question, detail = CONFIRM[action]
    facts = {
        "token": f"token {appointment.token_label}" if appointment.token_label else "this appointment",
        "name": appointment.patient.full_name,
        "minutes": settings.OPD_UNDO_MINUTES,
    }
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        back = fallback
    return render(
        request,
        "scheduling/confirm.html",
        {
            "appt": appointment,
            "action": action,
            "button": button,
            "question": question.format(**facts),
            "detail": detail.format(**facts),
            "page_url": back,
        },
    )


@login_required
@require_GET
def waiting_rooms(request: HttpRequest) -> HttpResponse:
    """Reception's start page: each clinic's waiting-room display, and each doctor's queue today."""
    user = signed_in_user(request)
    if not user.is_clinic_staff:
        raise DjangoPermissionDenied("Only clinic staff open waiting-room displays.")
    now = timezone.now()
    rooms = []
    for clinic in queue_clinics_for(user):
        lines, called = clinic_day(clinic, now=now)
        rooms.append(
            {
                "clinic": clinic,
                "lines": lines,
                "called": called,
                "triage_url": triage_url(clinic.pk) if _is_nurse_at(request, clinic.pk) else None,
            }
        )
    # Check-in happens at the desk: the Today page lists only the clinic's today (the appointment list
    # would show every future date).
    admin_url = reverse("admin:scheduling_appointment_today")
    return render(
        request, "scheduling/waiting_rooms.html", {"rooms": rooms, "now": now, "admin_url": admin_url}
    )


def _waiting_room_context(request: HttpRequest, pk: int) -> dict:
    clinic = _access(clinic_queue_access, request.user, pk)
    now = timezone.now()
    version = queue_version(queue_name(CLINIC_QUEUE, clinic.pk))
    lines, called = clinic_day(clinic, now=now)
    return {
        "clinic": clinic,
        "lines": lines,
        "called": called,
        "version": version,
        "now": now,
        "board_url": reverse("queue:waiting-room-board", args=[clinic.pk]),
        **_socket(CLINIC_QUEUE, clinic.pk),
    }


@login_required
@require_GET
def waiting_room(request: HttpRequest, pk: int) -> HttpResponse:
    """The waiting-room display: tokens called and each room's next tokens, big; never a patient's name."""
    return render(request, "scheduling/waiting_room.html", _waiting_room_context(request, pk))


@login_required
@require_GET
def waiting_room_board(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "scheduling/_waiting_room_board.html", _waiting_room_context(request, pk))
