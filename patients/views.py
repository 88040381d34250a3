"""The patient's safety data as a page: allergies, the problem list and current medications, each with
its add, edit and resolve/stop forms. Plain forms, no JavaScript needed.

Who: doctors in clinical standing and clinic staff, the writers of these records (patients.services.
check_allergy_writer); administrators and patients get 403, another organization's patient 404. Every
entry shown is written in the access log, like the API reads.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from opd.core.admin_mixins import attach_domain_error
from opd.core.audit import record_access
from opd.core.errors import DomainError
from opd.core.models import Role, User
from opd.core.tenancy import require_clinical_standing, signed_in_user

from .forms import AllergyForm, MedicationForm, ProblemForm
from .models import Allergy, AllergyStatus, Medication, Patient, Problem
from .selectors import (
    allergies_for,
    allergy_assessment,
    medication_list_order,
    medications_for,
    patients_for,
    problem_list_order,
    problems_for,
)
from .services import (
    allergy_record,
    allergy_set_no_known_allergies,
    allergy_update,
    medication_add,
    medication_stop,
    medication_update,
    problem_add,
    problem_resolve,
    problem_update,
)

VIEWED = "record.viewed"

# kind in the URL -> what the page needs to list, add, change and close (resolve, stop) an entry.
KINDS: dict[str, dict[str, Any]] = {
    "allergies": {
        "form": AllergyForm,
        "scope": allergies_for,
        "add": lambda actor, patient, data: allergy_record(actor=actor, patient=patient, **data),
        "update": lambda actor, row, data: allergy_update(actor=actor, allergy=row, **data),
        "close": lambda actor, row: allergy_update(actor=actor, allergy=row, status=AllergyStatus.INACTIVE),
        "noun": "allergy",
        "closed": "marked inactive",
    },
    "problems": {
        "form": ProblemForm,
        "scope": problems_for,
        "add": lambda actor, patient, data: problem_add(actor=actor, patient=patient, **data),
        "update": lambda actor, row, data: problem_update(actor=actor, problem=row, **data),
        "close": lambda actor, row: problem_resolve(actor=actor, problem=row),
        "noun": "problem",
        "closed": "resolved",
    },
    "medications": {
        "form": MedicationForm,
        "scope": medications_for,
        "add": lambda actor, patient, data: medication_add(actor=actor, patient=patient, **data),
        "update": lambda actor, row, data: medication_update(actor=actor, medication=row, **data),
        "close": lambda actor, row: medication_stop(actor=actor, medication=row),
        "noun": "medication",
        "closed": "stopped",
    },
}


def _clinician(request: HttpRequest) -> User:
    user = signed_in_user(request)
    if not (user.is_superuser or user.role in (Role.DOCTOR, Role.STAFF)):
        raise DjangoPermissionDenied("The safety data page is for doctors and clinic staff.")
    require_clinical_standing(user)
    return user


def _patient(user: User, patient_id: int) -> Patient:
    return get_object_or_404(patients_for(user), pk=patient_id)


def _kind(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise Http404("No such list.")
    return KINDS[kind]


def _back(request: HttpRequest) -> str:
    """Where the page was opened from (the consultation panel, the dashboard), if it is ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


def _page_url(request: HttpRequest, patient: Patient) -> str:
    url = reverse("patients:safety", args=[patient.pk])
    back = _back(request)
    return f"{url}?{urlencode({'next': back})}" if back else url


def _log(user: User, rows: list[Any]) -> None:
    for row in rows:
        record_access(
            actor=user, action=VIEWED, obj=row, organization_id=row.organization_id, patient_id=row.patient_id
        )


def _render(
    request: HttpRequest,
    user: User,
    patient: Patient,
    forms: dict[str, ModelForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    allergies = sorted(
        allergies_for(user).filter(patient=patient),
        key=lambda row: (not row.is_active, row.substance.lower(), row.pk),
    )
    problems = sorted(problems_for(user).filter(patient=patient), key=problem_list_order)
    medications = sorted(medications_for(user).filter(patient=patient), key=medication_list_order)
    _log(user, [*allergies, *problems, *medications])
    forms = forms or {}
    context = {
        "patient": patient,
        "allergies": allergies,
        "assessment": allergy_assessment(patient, [row for row in allergies if row.is_active]),
        "problems": problems,
        "medications": medications,
        "allergy_form": forms.get("allergies") or AllergyForm(prefix="allergy"),
        "problem_form": forms.get("problems") or ProblemForm(prefix="problem"),
        "medication_form": forms.get("medications") or MedicationForm(prefix="medication"),
        "back": _back(request),
    }
    return render(request, "patients/safety.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def safety(request: HttpRequest, patient_id: int) -> HttpResponse:
    user = _clinician(request)
    return _render(request, user, _patient(user, patient_id))


PREFIXES = {"allergies": "allergy", "problems": "problem", "medications": "medication"}


@login_required
@require_POST
def add(request: HttpRequest, patient_id: int, kind: str) -> HttpResponse:
    user = _clinician(request)
    patient = _patient(user, patient_id)
    spec = _kind(kind)
    form = spec["form"](request.POST, prefix=PREFIXES[kind])
    if form.is_valid():
        try:
            spec["add"](user, patient, form.cleaned_data)
        except DomainError as exc:
            attach_domain_error(form, exc)
        else:
            messages.success(request, f"The {spec['noun']} was recorded.")
            return redirect(_page_url(request, patient))
    # Bad input is answered 400 with the page and the messages beside the fields; nothing was written.
    return _render(request, user, patient, forms={kind: form}, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, patient_id: int, kind: str, pk: int) -> HttpResponse:
    user = _clinician(request)
    patient = _patient(user, patient_id)
    spec = _kind(kind)
    row = get_object_or_404(spec["scope"](user).filter(patient=patient), pk=pk)
    status = 200
    if request.method == "POST":
        form = spec["form"](request.POST, instance=type(row).objects.get(pk=row.pk))
        if form.is_valid():
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            try:
                spec["update"](user, row, changed)
            except DomainError as exc:
                attach_domain_error(form, exc)
            else:
                messages.success(request, f"The {spec['noun']} was changed.")
                return redirect(_page_url(request, patient))
        status = 400
    else:
        _log(user, [row])
        form = spec["form"](instance=row)
    context = {
        "patient": patient,
        "row": row,
        "form": form,
        "noun": spec["noun"],
        "kind": kind,
        "back": _back(request),
    }
    return render(request, "patients/safety_edit.html", context, status=status)


@login_required
@require_POST
def close(request: HttpRequest, patient_id: int, kind: str, pk: int) -> HttpResponse:
    user = _clinician(request)
    patient = _patient(user, patient_id)
    spec = _kind(kind)
    row: Allergy | Problem | Medication = get_object_or_404(
        spec["scope"](user).filter(patient=patient), pk=pk
    )
    try:
        spec["close"](user, row)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The {spec['noun']} was {spec['closed']}.")
    return redirect(_page_url(request, patient))


@login_required
@require_POST
def no_known_allergies(request: HttpRequest, patient_id: int) -> HttpResponse:
    user = _clinician(request)
    patient = _patient(user, patient_id)
    try:
        allergy_set_no_known_allergies(actor=user, patient=patient)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "No known allergies recorded.")
    return redirect(_page_url(request, patient))
