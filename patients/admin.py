"""Patients in the admin: registration and edits through the patient services, never deleted.

Admins and staff see their organization's master patient index (reception must find any returning
patient); see patients.selectors.patients_for. MrnSequence is not registered: it is the counter behind
MRNs and only the registration service may move it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    VIEW,
    OpdModelAdmin,
    ScopedRelatedFilter,
    adopt,
    bulk_change,
)
from opd.core.models import Role
from opd.core.tenancy import clinics_for

from .models import Allergy, AllergyStatus, Medication, Patient, PatientStatus, Problem
from .selectors import (
    allergies_for,
    allergy_assessment,
    medications_for,
    patient_search,
    patients_for,
    problems_for,
)
from .services import (
    ALLERGY_FIELDS,
    EDITABLE_FIELDS,
    MEDICATION_FIELDS,
    PROBLEM_FIELDS,
    allergy_record,
    allergy_set_no_known_allergies,
    allergy_update,
    medication_add,
    medication_update,
    normalize_icd10,
    patient_create,
    patient_set_status,
    patient_update,
    problem_add,
    problem_update,
)

# What the apps above patients add to the patient's page (scheduling: appointments; notifications:
# contact preferences; billing: the balance). Each is called with the request and the patient and
# returns context for templates/admin/patients/patient/change_form.html; registered from the app's
# admin module, so this app never imports the ones above it.
PatientPageSection = Callable[[HttpRequest, Patient], dict[str, Any]]
PATIENT_PAGE_SECTIONS: list[PatientPageSection] = []


def patient_page_section(section: PatientPageSection) -> PatientPageSection:
    """Decorator: add `section` to the patient's admin page."""
    PATIENT_PAGE_SECTIONS.append(section)
    return section


@admin.register(Patient)
class PatientAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = ("mrn", "name", "date_of_birth", "sex", "phone", "status", "registered_at_clinic")
    list_display_links = ("mrn", "name")
    list_filter = ("status", "sex", ("registered_at_clinic", ScopedRelatedFilter))
    # Used by autocomplete and to show the search box; the search itself is patient_search() below.
    # Phone and policy numbers are encrypted: patient_search finds them through their blind indexes.
    search_fields = ("=mrn", "^last_name", "^first_name")
    search_help_text = "Name (start of each word), phone number (at least its last 7 digits), insurance policy number or exact MRN."
    list_select_related = ("organization", "registered_at_clinic")
    ordering = ("last_name", "first_name", "id")
    # Millions of rows: no unfiltered COUNT(*) and no facet counts on every page load. (No
    # date_hierarchy either: registration dates are not indexed and nobody browses patients by them.)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = ("mrn", "status", "user", "created_at", "updated_at")
    # Registration facts: patient_update() does not change them.
    locked_on_change = ("organization", "registered_at_clinic")
    service_error_fields = {"clinic": "registered_at_clinic"}
    actions = ("deactivate_patients", "reactivate_patients", "record_no_known_allergies")

    _person = ("Person", {"fields": ("first_name", "last_name", "date_of_birth", "sex")})
    _contact = (
        "Contact",
        {"fields": ("phone", "email", "address", "emergency_contact_name", "emergency_contact_phone")},
    )
    _insurance = ("Insurance", {"fields": ("insurance_provider", "insurance_policy_number")})
    add_fieldsets = (
        ("Registration", {"fields": ("organization", "registered_at_clinic")}),
        _person,
        _contact,
        _insurance,
    )
    # The shared parts above infer as plain dicts, not the stubs' fieldset TypedDict; Django takes both.
    fieldsets = (  # type: ignore[assignment]
        ("Record", {"fields": ("mrn", "status", "organization", "registered_at_clinic", "user")}),
        _person,
        _contact,
        _insurance,
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def scope_queryset(self, qs, user):
        # AND-ed into the same WHERE (no subquery), so the (organization, ...) indexes stay in play.
        return qs & patients_for(user)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if request.method == "GET":
            patient = self.get_object(request, object_id)
            context.update(self._page_sections(request, patient))
        return super().change_view(request, object_id, form_url, context)

    def _page_sections(self, request, patient: Patient) -> dict[str, Any]:
        # Allergies are clinical: read through allergies_for (administrators get none, and are told so).
        readable = allergies_for(request.user).filter(patient=patient)
        active = list(readable.filter(status=AllergyStatus.ACTIVE).order_by("substance", "id"))
        context: dict[str, Any] = {
            "allergies_shown": request.user.is_superuser or request.user.role != Role.ADMIN,
            "allergies": active,
            "allergy_assessment": allergy_assessment(patient, active).label,
            # Filled by the billing app's section when it is installed; None reads "No balance information".
            "balance": None,
        }
        for section in PATIENT_PAGE_SECTIONS:
            context.update(section(request, patient))
        return context

    def get_list_display(self, request):
        if request.user.is_superuser:
            return (*self.list_display, "organization")
        return self.list_display

    def get_search_results(self, request, queryset, search_term):
        # Index-backed prefix search shared with the API; no duplicates (no joins).
        return patient_search(queryset, search_term), False

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if "registered_at_clinic" not in initial and not request.user.is_superuser:
            clinic_ids = list(clinics_for(request.user).values_list("pk", flat=True)[:2])
            if len(clinic_ids) == 1:  # reception at one clinic registers patients there
                initial["registered_at_clinic"] = clinic_ids[0]
        return initial

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            # The form already wrote the new values onto `obj`; the service compares with the stored row.
            current = Patient.objects.get(pk=obj.pk)
            changed = {name: data[name] for name in EDITABLE_FIELDS if name in form.changed_data}
            saved = patient_update(actor=request.user, patient=current, **changed)
        else:
            fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
            saved = patient_create(
                actor=request.user,
                organization=data.get("organization") or request.user.organization,
                registered_at_clinic=data.get("registered_at_clinic"),
                **fields,
            )
        adopt(obj, saved)

    @admin.display(description="name", ordering="last_name")
    def name(self, obj: Patient) -> str:
        return f"{obj.last_name}, {obj.first_name}"

    def _set_status(self, request, queryset, status: str, verb: str) -> None:
        bulk_change(
            self,
            request,
            queryset,
            noun="patient",
            verb=verb,
            already=lambda patient: patient.status == status,
            change=lambda patient: patient_set_status(actor=request.user, patient=patient, status=status),
        )

    @admin.action(description="Deactivate selected patients", permissions=["change"])
    def deactivate_patients(self, request, queryset):
        self._set_status(request, queryset, PatientStatus.INACTIVE, "deactivated")

    @admin.action(description="Reactivate selected patients", permissions=["change"])
    def reactivate_patients(self, request, queryset):
        self._set_status(request, queryset, PatientStatus.ACTIVE, "reactivated")

    @admin.action(description="Record no known allergies (asked today)", permissions=["change"])
    def record_no_known_allergies(self, request, queryset):
        # The service refuses administrators (not a clinical role) and patients with active allergies;
        # each refusal is reported by name.
        bulk_change(
            self,
            request,
            queryset,
            noun="patient",
            verb="marked no known allergies for",
            already=lambda patient: False,
            change=lambda patient: allergy_set_no_known_allergies(actor=request.user, patient=patient),
        )


@admin.register(Allergy)
class AllergyAdmin(OpdModelAdmin):
    """Allergies, recorded and changed through the allergy services. Staff (nurses, reception) only:
    administrators run the organization and do not read clinical data. Never deleted: set the status to
    inactive or entered in error."""

    role_permissions = {Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = ("substance", "patient", "category", "severity", "status", "recorded_by", "recorded_at")
    list_filter = ("status", "category", "severity")
    list_select_related = ("patient", "recorded_by")
    search_fields = ("^substance", "=patient__mrn")
    autocomplete_fields = ("patient",)
    fields = (
        "patient",
        "substance",
        "category",
        "severity",
        "reaction",
        "status",
        "recorded_by",
        "recorded_at",
    )
    readonly_fields = ("recorded_by", "recorded_at")
    locked_on_change = ("patient",)
    show_full_result_count = False

    def scope_queryset(self, qs, user):
        return qs & allergies_for(user)

    def save_model(self, request, obj, form, change):
        if change:
            current = Allergy.objects.get(pk=obj.pk)
            saved = allergy_update(actor=request.user, allergy=current, **self.changes(form, ALLERGY_FIELDS))
        else:
            data = form.cleaned_data
            saved = allergy_record(
                actor=request.user,
                patient=data["patient"],
                **{name: data[name] for name in ALLERGY_FIELDS if name in data},
            )
        adopt(obj, saved)


class ProblemForm(forms.ModelForm):
    # Without the model's validator here: the code is normalized first (clean_icd10_code), then the
    # model checks its shape.
    icd10_code = forms.CharField(label="ICD-10 code", max_length=12, required=False)

    class Meta:
        model = Problem
        fields = ("patient", "description", "icd10_code", "status", "onset_date", "resolved_date")

    def clean_icd10_code(self) -> str:
        # Normalized before the model's shape check, as the service does: "i10" is I10.
        return normalize_icd10(self.cleaned_data.get("icd10_code") or "")


@admin.register(Problem)
class ProblemAdmin(OpdModelAdmin):
    """The problem list, through the problem services, with the allergy rules: staff only here,
    administrators do not read clinical data; never deleted (resolved, or entered in error)."""

    form = ProblemForm
    role_permissions = {Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = (
        "description",
        "icd10_code",
        "patient",
        "status",
        "onset_date",
        "resolved_date",
        "recorded_by",
    )
    list_filter = ("status",)
    list_select_related = ("patient", "recorded_by")
    # The description is encrypted: searched by code and MRN only.
    search_fields = ("^icd10_code", "=patient__mrn")
    autocomplete_fields = ("patient",)
    fields = ("patient", *PROBLEM_FIELDS, "recorded_by", "recorded_at")
    readonly_fields = ("recorded_by", "recorded_at")
    locked_on_change = ("patient",)
    show_full_result_count = False

    def scope_queryset(self, qs, user):
        return qs & problems_for(user)

    def save_model(self, request, obj, form, change):
        if change:
            current = Problem.objects.get(pk=obj.pk)
            saved = problem_update(actor=request.user, problem=current, **self.changes(form, PROBLEM_FIELDS))
        else:
            data = form.cleaned_data
            saved = problem_add(
                actor=request.user,
                patient=data["patient"],
                **{name: data[name] for name in PROBLEM_FIELDS if name in data},
            )
        adopt(obj, saved)


@admin.register(Medication)
class MedicationAdmin(OpdModelAdmin):
    """Current and past medications, through the medication services, with the allergy rules."""

    role_permissions = {Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = (
        "name",
        "dose",
        "frequency",
        "patient",
        "status",
        "started_on",
        "stopped_on",
        "recorded_by",
    )
    list_filter = ("status",)
    list_select_related = ("patient", "recorded_by")
    search_fields = ("^name", "=patient__mrn")
    autocomplete_fields = ("patient",)
    fields = ("patient", *MEDICATION_FIELDS, "recorded_by", "recorded_at")
    readonly_fields = ("recorded_by", "recorded_at")
    locked_on_change = ("patient",)
    show_full_result_count = False

    def scope_queryset(self, qs, user):
        return qs & medications_for(user)

    def save_model(self, request, obj, form, change):
        if change:
            current = Medication.objects.get(pk=obj.pk)
            saved = medication_update(
                actor=request.user, medication=current, **self.changes(form, MEDICATION_FIELDS)
            )
        else:
            data = form.cleaned_data
            saved = medication_add(
                actor=request.user,
                patient=data["patient"],
                **{name: data[name] for name in MEDICATION_FIELDS if name in data},
            )
        adopt(obj, saved)
