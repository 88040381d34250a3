"""The read-only record of a completed consultation, opened from the dashboard's done list, with its
addenda and a form to add one (consultations.services.addendum_create: the consultation's doctor, once
it is completed). A module of its own beside views.py, which holds the editing panel.

Access: the appointment's doctor (the panel's rule, views._panel_appointment): 403 for anyone else
who can see the appointment, 404 for anyone who cannot. Each rendering logs the consultation and the
prescriptions it shows.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from opd.core.admin_mixins import attach_domain_error
from opd.core.errors import DomainError
from opd.core.tenancy import signed_in_user
from scheduling.models import Appointment

from .access import VIEWED, log_reads
from .models import TEXT_MAX, Consultation
from .services import addendum_create
from .views import NEWS2_LABELS, _consultation_of, _panel_appointment, _prescriptions_of


class AddendumForm(forms.Form):
    text = forms.CharField(
        label="Addendum",
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="A correction or a later note. The record above never changes; addenda are added below it.",
    )


def _completed(request: HttpRequest, appointment: Appointment) -> Consultation:
    consultation = _consultation_of(request, appointment)
    if consultation is None:
        raise Http404("This appointment has no consultation record.")
    return consultation


def _render(
    request: HttpRequest,
    appointment: Appointment,
    consultation: Consultation,
    form: AddendumForm,
    status: int = 200,
) -> HttpResponse:
    prescriptions = _prescriptions_of(request, consultation)
    log_reads(signed_in_user(request), VIEWED, [consultation, *prescriptions])
    news2_rows = [
        (NEWS2_LABELS[name], score) for name, score in (consultation.news2_sub_scores or {}).items()
    ]
    context = {
        "appointment": appointment,
        "consultation": consultation,
        "prescriptions": prescriptions,
        "addenda": list(consultation.addenda.select_related("author")),
        "news2_rows": news2_rows,
        "form": form,
    }
    return render(request, "consultations/record.html", context, status=status)


@login_required
@require_GET
def record(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = _panel_appointment(request, appointment_id)
    consultation = _completed(request, appointment)
    if consultation.is_draft:
        # Still being written: the panel is where it is edited.
        return redirect("consultations:panel", appointment_id=appointment.pk)
    return _render(request, appointment, consultation, AddendumForm())


@login_required
@require_POST
def record_addendum(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = _panel_appointment(request, appointment_id)
    consultation = _completed(request, appointment)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            addendum_create(
                actor=signed_in_user(request), consultation=consultation, text=form.cleaned_data["text"]
            )
        except DomainError as exc:
            attach_domain_error(form, exc)
        else:
            messages.success(request, "Addendum added.")
            return redirect("consultations:record", appointment_id=appointment.pk)
    return _render(request, appointment, consultation, form, status=400)
