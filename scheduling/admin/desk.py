"""Today at the desk: reception's day at one clinic, inside the admin, in the clinic's time.

Pages (custom admin views on AppointmentAdmin, see `DeskMixin.get_urls`):
- today/            arrivals by time with status and token, a patient search (name, MRN, phone, date of
                    birth), the clinic picker (the user's clinics; the choice is kept in the session);
- today/book/       a patient's booking: a 14-day calendar of open slots for a department or one doctor,
                    a slot, "first available", or a walk-in (the next free seat today, checked in at once
                    when check-in is open);
- <id>/check-in/    POST: check in and issue the token, then the printable slip;
- <id>/slip/        the token slip (print stylesheet);
- <id>/cancel/      cancel with a reason;
- <id>/reschedule/  move to another open slot.

Every write goes through the scheduling services (appointment_book, appointment_book_first_available,
appointment_check_in, appointment_cancel, appointment_reschedule); nothing here saves a model. Reads are
scoped by the admin's own querysets (another clinic's appointment is 404) and the selectors.
Bad input answers 400 with the message beside the field, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from opd.core.admin_mixins import ADD, VIEW, attach_domain_error
from opd.core.clinic_time import clock, in_clinic_time, local_today, parse_local_day, zone_label
from opd.core.errors import Conflict, DomainError, ValidationFailed
from opd.core.models import Clinic, Department
from opd.core.tenancy import clinics_for
from patients.admin import patient_page_section
from patients.models import ENCRYPTED_FIELDS as PATIENT_ENCRYPTED_FIELDS
from patients.models import Patient
from patients.selectors import patient_search, patients_for

from ..models import ACTIVE_STATUSES, Appointment, ApprovalStatus, BookingChannel, Doctor, Slot
from ..selectors import appointments_for, bookable_slot_q, doctors_for, local_day_bounds, slots_for, today_q
from ..services import (
    appointment_book,
    appointment_book_first_available,
    appointment_cancel,
    appointment_check_in,
    appointment_reschedule,
)

SESSION_KEY = "opd_desk_clinic"
CALENDAR_DAYS = 14
SEARCH_LIMIT = 20
# A walk-in tries the next free seats in order when one is taken under it; a handful is plenty.
WALK_IN_TRIES = 5


@dataclass(frozen=True)
class CalendarDay:
    date: dt.date
    open_count: int


def desk_clinics(user) -> QuerySet[Clinic]:
    return clinics_for(user).filter(is_active=True).order_by("name", "pk")


def open_slots(user, clinic: Clinic, *, department: Department, doctor: Doctor | None, now: dt.datetime):
    """Slots the desk could book now at the clinic, in the department (or one doctor), within the
    calendar's 14 clinic-local days."""
    first_day = local_today(clinic, now)
    qs = slots_for(user).filter(
        bookable_slot_q(now),
        clinic=clinic,
        department=department,
        date__gte=first_day,
        date__lt=first_day + dt.timedelta(days=CALENDAR_DAYS),
    )
    if doctor is not None:
        qs = qs.filter(doctor=doctor)
    return qs.select_related("doctor__user", "clinic", "department")


def calendar(qs: QuerySet[Slot], clinic: Clinic, now: dt.datetime) -> list[CalendarDay]:
    first_day = local_today(clinic, now)
    counts = dict(qs.order_by().values("date").annotate(n=Count("id")).values_list("date", "n"))
    return [
        CalendarDay(date=day, open_count=counts.get(day, 0))
        for day in (first_day + dt.timedelta(days=i) for i in range(CALENDAR_DAYS))
    ]


def find_patients(user, term: str) -> list[Patient]:
    """Name, MRN, phone (blind index over the last 7 digits) through patients.selectors.patient_search,
    or a date of birth written with its year (2026-12-06, 06/12/2026, 6 Dec 1980)."""
    term = (term or "").strip()
    if not term:
        return []
    qs = patients_for(user).defer(*PATIENT_ENCRYPTED_FIELDS)
    born = parse_local_day(term, timezone.localdate()) if any(ch.isdigit() for ch in term) else None
    has_year = any(
        len(part) == 4 and part.isdigit() for part in term.replace("/", " ").replace("-", " ").split()
    )
    qs = qs.filter(date_of_birth=born) if born is not None and has_year else patient_search(qs, term)
    return list(qs.order_by("last_name", "first_name", "pk")[:SEARCH_LIMIT])


class ClinicChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class DoctorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class DepartmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class WhereForm(forms.Form):
    """Which calendar: a department, optionally one doctor in it, and a day."""

    department = DepartmentChoiceField(queryset=Department.objects.none(), required=False)
    doctor = DoctorChoiceField(queryset=Doctor.objects.none(), required=False, empty_label="Any doctor")
    day = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def __init__(self, *args, user, clinic: Clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        department = cast(forms.ModelChoiceField, self.fields["department"])
        doctor = cast(forms.ModelChoiceField, self.fields["doctor"])
        department.queryset = Department.objects.filter(clinic=clinic, is_active=True).order_by("name")
        doctor.queryset = (
            doctors_for(user)
            .filter(approval_status=ApprovalStatus.APPROVED, departments__clinic=clinic)
            .select_related("user")
            .distinct()
        )

    def clean(self):
        cleaned = super().clean()
        department, doctor = cleaned.get("department"), cleaned.get("doctor")
        if doctor is not None and department is None:
            # One doctor: their first department at this clinic.
            department = (
                doctor.departments.filter(clinic=self.clinic, is_active=True).order_by("name").first()
            )
            cleaned["department"] = department
        if (
            doctor is not None
            and department is not None
            and not doctor.departments.filter(pk=department.pk).exists()
        ):
            self.add_error("doctor", f"{doctor.display_name} does not work in {department.name}.")
        return cleaned


class BookForm(forms.Form):
    """What the booking page's buttons send: a slot, first available, or a walk-in."""

    how = forms.ChoiceField(
        choices=[("slot", "slot"), ("first_available", "first"), ("walk_in", "walk-in")], required=False
    )
    slot = forms.IntegerField(required=False, min_value=1)
    reason = forms.CharField(required=False, max_length=500)

    def clean(self):
        cleaned = super().clean()
        # A time's button sends only its slot.
        how = cleaned.get("how") or ("slot" if cleaned.get("slot") else "")
        if not how and "how" not in self.errors and "slot" not in self.errors:
            self.add_error("how", "Choose a time, first available or a walk-in.")
        elif how == "slot" and not cleaned.get("slot") and "slot" not in self.errors:
            self.add_error("slot", "Choose a time.")
        cleaned["how"] = how
        return cleaned


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        label="Reason",
        help_text="Kept with the appointment and in the audit trail.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the appointment is cancelled.")
        return reason


class RescheduleForm(forms.Form):
    slot = forms.IntegerField(min_value=1)


if TYPE_CHECKING:
    from opd.core.admin_mixins import OpdModelAdmin as _AdminBase
else:
    _AdminBase = object


class DeskMixin(_AdminBase):
    """The Today page and the appointment actions, mixed into AppointmentAdmin."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = "scheduling_appointment"
        return [
            path("today/", wrap(self.today_view), name=f"{info}_today"),
            path("today/book/", wrap(self.book_view), name=f"{info}_desk_book"),
            path("<path:object_id>/check-in/", wrap(self.check_in_view), name=f"{info}_check_in"),
            path("<path:object_id>/slip/", wrap(self.slip_view), name=f"{info}_slip"),
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name=f"{info}_cancel"),
            path("<path:object_id>/reschedule/", wrap(self.reschedule_view), name=f"{info}_reschedule"),
            *super().get_urls(),
        ]

    # Shared pieces ----------------------------------------------------------------------------------

    def _require(self, request, action: str) -> None:
        if not self.allowed(request, action):
            raise PermissionDenied

    def _context(self, request, title: str, **extra):
        request.current_app = self.admin_site.name
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            **extra,
        }

    def _render(self, request, template: str, context: dict, status: int = 200) -> TemplateResponse:
        return TemplateResponse(request, f"admin/scheduling/desk/{template}", context, status=status)

    def _clinic(self, request) -> tuple[Clinic, list[Clinic]]:
        """The desk's clinic: ?clinic= (one of the user's clinics, else 404), remembered in the session;
        else the remembered one; else the first of the user's clinics."""
        clinics = list(desk_clinics(request.user))
        if not clinics:
            raise Http404("You work at no active clinic.")
        by_id = {clinic.pk: clinic for clinic in clinics}
        asked = request.GET.get("clinic") or request.POST.get("clinic")
        if asked:
            try:
                clinic = by_id[int(asked)]
            except (ValueError, KeyError):
                raise Http404("No such clinic.") from None
            request.session[SESSION_KEY] = clinic.pk
            return clinic, clinics
        remembered = request.session.get(SESSION_KEY)
        return by_id.get(remembered, clinics[0]), clinics

    def _appointment(self, request, object_id) -> Appointment:
        # The admin's own queryset: another clinic's or organization's appointment is 404.
        return self.get_object(request, unquote(object_id))

    def _today_url(self, clinic: Clinic) -> str:
        return reverse("admin:scheduling_appointment_today") + "?" + urlencode({"clinic": clinic.pk})

    # Today ------------------------------------------------------------------------------------------

    def today_view(self, request):
        self._require(request, VIEW)
        clinic, clinics = self._clinic(request)
        now = timezone.now()
        arrivals = (
            self.get_queryset(request)
            .filter(today_q([clinic], now))
            .select_related("patient", "doctor__user", "department", "clinic")
            .defer(*(f"patient__{name}" for name in PATIENT_ENCRYPTED_FIELDS))
            .order_by("start", "pk")
        )
        term = request.GET.get("q", "").strip()[:100]
        rows = [
            {
                "appointment": a,
                "time": clock(a.start, clinic),
                "status": a.get_status_display(),
                "token": a.token_label or "",
            }
            for a in arrivals
        ]
        context = self._context(
            request,
            f"Today at {clinic.name}",
            clinic=clinic,
            clinics=clinics,
            day=local_today(clinic, now),
            zone=zone_label(clinic, now),
            rows=rows,
            term=term,
            found=find_patients(request.user, term) if term else None,
            may_book=self.allowed(request, ADD),
            may_check_in=self.allowed(request, "check_in"),
        )
        return self._render(request, "today.html", context)

    # Booking ----------------------------------------------------------------------------------------

    def book_view(self, request):
        self._require(request, ADD)
        clinic, clinics = self._clinic(request)
        patient_id = request.GET.get("patient") or request.POST.get("patient")
        if not (patient_id or "").isdigit():
            raise Http404("Choose a patient first.")
        patient = get_object_or_404(
            patients_for(request.user).defer(*PATIENT_ENCRYPTED_FIELDS), pk=patient_id
        )
        now = timezone.now()
        params = request.POST if request.method == "POST" else request.GET
        where = WhereForm(params, user=request.user, clinic=clinic)
        where_ok = where.is_valid()
        department = where.cleaned_data.get("department") if where_ok else None
        doctor = where.cleaned_data.get("doctor") if where_ok else None
        book_form = BookForm(request.POST) if request.method == "POST" else BookForm()
        status = 200
        if request.method == "POST":
            if not where_ok or department is None:
                if where_ok:
                    where.add_error("department", "Choose a department or a doctor.")
                status = 400
            elif book_form.is_valid():
                try:
                    appointment = self._book(request, book_form, clinic, patient, department, doctor, now)
                except DomainError as exc:
                    attach_domain_error(book_form, exc)
                    status = exc.status
                else:
                    return appointment
            else:
                status = 400
        slots = (
            open_slots(request.user, clinic, department=department, doctor=doctor, now=now)
            if department
            else None
        )
        days = calendar(slots, clinic, now) if slots is not None else []
        day = (where.cleaned_data.get("day") if where_ok else None) or next(
            (d.date for d in days if d.open_count), None
        )
        shown = (
            list(slots.filter(date=day).order_by("start", "doctor__user__last_name")[:200])
            if slots is not None and day
            else []
        )
        query = {"clinic": clinic.pk, "patient": patient.pk}
        if department:
            query["department"] = department.pk
        if doctor:
            query["doctor"] = doctor.pk
        context = self._context(
            request,
            f"Book for {patient.full_name}",
            clinic=clinic,
            clinics=clinics,
            patient=patient,
            where=where,
            form=book_form,
            department=department,
            doctor=doctor,
            days=days,
            day=day,
            day_query=urlencode(query),
            slots=[(slot, clock(slot.start, clinic)) for slot in shown],
            zone=zone_label(clinic, now),
            today=local_today(clinic, now),
            today_url=self._today_url(clinic),
        )
        return self._render(request, "book.html", context, status=status)

    def _book(self, request, form, clinic, patient, department, doctor, now):
        """Call the booking service the button asked for; answers the redirect."""
        how, reason = form.cleaned_data["how"], form.cleaned_data.get("reason", "")
        actor = request.user
        if how == "slot":
            slot = (
                open_slots(actor, clinic, department=department, doctor=doctor, now=now)
                .filter(pk=form.cleaned_data["slot"])
                .first()
            )
            if slot is None:
                raise _field_error(
                    "slot", "That time is not open any more (or not at this clinic); choose another."
                )
            appointment = appointment_book(
                actor=actor, patient=patient, slot=slot, reason=reason, channel=BookingChannel.ADMIN
            )
        elif how == "first_available":
            if doctor is not None:
                first = (
                    open_slots(actor, clinic, department=department, doctor=doctor, now=now)
                    .order_by("start")
                    .first()
                )
                if first is None:
                    raise _field_error(
                        "doctor", f"{doctor.display_name} has no open time in the next {CALENDAR_DAYS} days."
                    )
                appointment = appointment_book(
                    actor=actor, patient=patient, slot=first, reason=reason, channel=BookingChannel.ADMIN
                )
            else:
                appointment = appointment_book_first_available(
                    actor=actor,
                    patient=patient,
                    department_id=department.pk,
                    reason=reason,
                    channel=BookingChannel.ADMIN,
                )
        else:
            return self._walk_in(request, clinic, patient, department, doctor, reason, now)
        messages.success(
            request,
            f"Booked {patient.full_name} with {appointment.doctor.display_name} at "
            f"{in_clinic_time(appointment.start, clinic)}.",
        )
        return HttpResponseRedirect(self._today_url(clinic))

    def _walk_in(self, request, clinic, patient, department, doctor, reason, now):
        """The next free seat today (the doctor's, or anyone's in the department), then check-in when it
        is open. A seat taken under us (Conflict) moves on to the next one."""
        _, day_end = local_day_bounds(clinic, now)
        seats = open_slots(request.user, clinic, department=department, doctor=doctor, now=now).filter(
            start__lt=day_end
        )
        candidates = list(seats.order_by("start", "pk")[:WALK_IN_TRIES])
        if not candidates:
            field = "doctor" if doctor is not None else "department"
            raise _field_error(field, "No free seat left today; book another day.")
        appointment = None
        for slot in candidates:
            try:
                appointment = appointment_book(
                    actor=request.user,
                    patient=patient,
                    slot=slot,
                    reason=reason or "Walk-in",
                    channel=BookingChannel.ADMIN,
                )
                break
            except Conflict as exc:
                if exc.code not in ("slot_full", "conflict"):
                    raise
        if appointment is None:
            raise Conflict("Every free seat today was taken meanwhile; try again.", code="busy")
        try:
            appointment_check_in(actor=request.user, appointment=appointment)
        except DomainError as exc:
            messages.warning(
                request,
                f"Walk-in booked with {appointment.doctor.display_name} at {in_clinic_time(appointment.start, clinic)}; "
                f"not checked in yet: {exc.message}",
            )
            return HttpResponseRedirect(self._today_url(clinic))
        messages.success(request, f"Walk-in booked and checked in: {patient.full_name}.")
        return HttpResponseRedirect(reverse("admin:scheduling_appointment_slip", args=[appointment.pk]))

    # Appointment actions ----------------------------------------------------------------------------

    def check_in_view(self, request, object_id):
        self._require(request, "check_in")
        appointment = self._appointment(request, object_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:scheduling_appointment_change", args=[appointment.pk]))
        try:
            appointment_check_in(actor=request.user, appointment=appointment)
        except DomainError as exc:
            messages.error(request, f"Could not check {appointment.patient.full_name} in: {exc.message}")
            return HttpResponseRedirect(
                request.POST.get("next") if _safe_next(request) else self._today_url(appointment.clinic)
            )
        return HttpResponseRedirect(reverse("admin:scheduling_appointment_slip", args=[appointment.pk]))

    def slip_view(self, request, object_id):
        self._require(request, VIEW)
        appointment = self._appointment(request, object_id)
        if appointment.token_number is None:
            messages.error(request, "There is no token yet: check the patient in first.")
            return HttpResponseRedirect(reverse("admin:scheduling_appointment_change", args=[appointment.pk]))
        clinic = appointment.clinic
        context = self._context(
            request,
            f"Token {appointment.token_label}",
            appointment=appointment,
            clinic=clinic,
            when=in_clinic_time(appointment.start, clinic),
            checked_in=in_clinic_time(appointment.checked_in_at, clinic),
            today_url=self._today_url(clinic),
        )
        return self._render(request, "slip.html", context)

    def cancel_view(self, request, object_id):
        self._require(request, "cancel")
        appointment = self._appointment(request, object_id)
        form = CancelForm(request.POST if request.method == "POST" else None)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    appointment_cancel(
                        actor=request.user,
                        appointment=appointment,
                        reason=form.cleaned_data["reason"],
                        channel=BookingChannel.ADMIN,
                    )
                except DomainError as exc:
                    attach_domain_error(form, exc)
                    status = 409
                else:
                    messages.success(request, f"Cancelled {appointment.patient.full_name}'s appointment.")
                    return HttpResponseRedirect(self._today_url(appointment.clinic))
            else:
                status = 400
        context = self._context(
            request,
            "Cancel the appointment",
            appointment=appointment,
            when=in_clinic_time(appointment.start, appointment.clinic),
            form=form,
        )
        return self._render(request, "cancel.html", context, status=status)

    def reschedule_view(self, request, object_id):
        self._require(request, "reschedule")
        appointment = self._appointment(request, object_id)
        clinic = appointment.clinic
        now = timezone.now()
        doctors = (
            doctors_for(request.user)
            .filter(approval_status=ApprovalStatus.APPROVED, departments=appointment.department)
            .select_related("user")
        )
        doctor = None
        if request.GET.get("doctor"):
            doctor = (
                doctors.filter(pk=request.GET["doctor"]).first() if request.GET["doctor"].isdigit() else None
            )
            if doctor is None:
                raise Http404("No such doctor in this department.")
        slots = open_slots(
            request.user, clinic, department=appointment.department, doctor=doctor, now=now
        ).exclude(pk=appointment.slot_id)
        form = RescheduleForm(request.POST if request.method == "POST" else None)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                slot = slots.filter(pk=form.cleaned_data["slot"]).first()
                if slot is None:
                    form.add_error(
                        "slot", "That time is not open (or not in this department); choose another."
                    )
                    status = 400
                else:
                    try:
                        moved = appointment_reschedule(
                            actor=request.user,
                            appointment=appointment,
                            slot=slot,
                            channel=BookingChannel.ADMIN,
                        )
                    except DomainError as exc:
                        attach_domain_error(form, exc)
                        status = exc.status
                    else:
                        messages.success(
                            request,
                            f"Moved {appointment.patient.full_name} to {in_clinic_time(moved.start, clinic)} "
                            f"with {moved.doctor.display_name}.",
                        )
                        return HttpResponseRedirect(self._today_url(clinic))
            else:
                status = 400
        days = calendar(slots, clinic, now)
        day = None
        if request.GET.get("day"):
            try:
                day = dt.date.fromisoformat(request.GET["day"])
            except ValueError:
                day = None
        day = day or next((d.date for d in days if d.open_count), None)
        shown = list(slots.filter(date=day).order_by("start")[:200]) if day else []
        query = {} if doctor is None else {"doctor": doctor.pk}
        context = self._context(
            request,
            "Reschedule the appointment",
            appointment=appointment,
            when=in_clinic_time(appointment.start, clinic),
            clinic=clinic,
            doctors=doctors,
            doctor=doctor,
            days=days,
            day=day,
            day_query=urlencode(query),
            slots=[(slot, clock(slot.start, clinic)) for slot in shown],
            zone=zone_label(clinic, now),
            form=form,
        )
        return self._render(request, "reschedule.html", context, status=status)


def _field_error(field: str, message: str) -> DomainError:
    return ValidationFailed(message, fields={field: message})


def _safe_next(request) -> bool:
    target = request.POST.get("next", "")
    return bool(target) and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})


PATIENT_PAGE_ROWS = 10


@patient_page_section
def patient_appointments_section(request, patient: Patient) -> dict:
    """The patient's page lists their upcoming and past appointments (at the clinics the user works at),
    each on its clinic's clock with the zone named, and links to book."""
    now = timezone.now()
    qs = (
        appointments_for(request.user)
        .filter(patient=patient)
        .select_related("clinic", "doctor__user", "department")
    )
    upcoming_q = Q(start__gte=now, status__in=ACTIVE_STATUSES)

    def rows(appointments) -> list[dict]:
        return [
            {
                "appointment": a,
                "when": in_clinic_time(a.start, a.clinic),
                "status": a.get_status_display(),
                "url": reverse("admin:scheduling_appointment_change", args=[a.pk]),
            }
            for a in appointments
        ]

    return {
        "upcoming_appointments": rows(qs.filter(upcoming_q).order_by("start", "pk")[:PATIENT_PAGE_ROWS]),
        "past_appointments": rows(qs.exclude(upcoming_q).order_by("-start", "-pk")[:PATIENT_PAGE_ROWS]),
        "book_url": reverse("admin:scheduling_appointment_desk_book")
        + "?"
        + urlencode({"patient": patient.pk}),
    }
