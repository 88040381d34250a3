"""Patients in the admin: registration and edits through the patient services, never deleted.

Admins and staff see their organization's master patient index (reception must find any returning
patient); see patients.selectors.patients_for. MrnSequence is not registered: it is the counter behind
MRNs and only the registration service may move it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    VIEW,
    OpdModelAdmin,
    ScopedRelatedFilter,
    adopt,
    bulk_change,
)
from opd.core.errors import DomainError
from opd.core.models import Role
from opd.core.phones import phone_display
from opd.core.tenancy import clinics_for

from .duplicates import Candidate, possible_duplicates
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
    PossibleDuplicate,
    allergy_record,
    allergy_set_no_known_allergies,
    allergy_update,
    medication_add,
    medication_update,
    merge_plan,
    normalize_icd10,
    patient_create,
    patient_duplicate_reviewed,
    patient_merge,
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


REASONS = {"name_and_date_of_birth": "same date of birth, similar name", "phone": "same phone number"}


def patient_label(patient: Patient) -> str:
    """How staff tell two patients of one name apart: name, date of birth, MRN."""
    return (
        f"{patient.last_name}, {patient.first_name} · born {patient.date_of_birth:%d %b %Y} · {patient.mrn}"
    )


def candidates_html(candidates: list[Candidate]):
    rows = []
    for candidate in candidates:
        patient = candidate.patient
        clinic = patient.registered_at_clinic
        rows.append(
            (
                reverse("admin:patients_patient_change", args=[patient.pk]),
                patient_label(patient),
                clinic.name if clinic is not None else "no clinic",
                ", ".join(REASONS[r] for r in candidate.reasons),
            )
        )
    return format_html(
        '<ul class="possible-duplicates">{}</ul>',
        format_html_join("", '<li><a href="{}">{}</a> ({}): {}</li>', rows),
    )


def _relation_name(label: str) -> str:
    app_model = label.rsplit(".", 1)[0]
    return str(apps.get_model(app_model)._meta.verbose_name_plural).capitalize()


class PatientAddForm(forms.ModelForm):
    confirm_new_patient = forms.BooleanField(
        label="This is a new patient",
        required=False,
        help_text="Tick only after checking the possible matches: none of them is this person.",
    )


@admin.register(Patient)
class PatientAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = ("mrn", "name", "date_of_birth", "sex", "phone_number", "status", "registered_at_clinic")
    list_display_links = ("mrn", "name")
    list_filter = ("status", "duplicate_review", "sex", ("registered_at_clinic", ScopedRelatedFilter))
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
    readonly_fields = (
        "mrn",
        "status",
        "merged_into_link",
        "user",
        "duplicate_review",
        "possible_matches",
        "created_at",
        "updated_at",
    )
    # Registration facts: patient_update() does not change them.
    locked_on_change = ("organization", "registered_at_clinic")
    service_error_fields = {"clinic": "registered_at_clinic"}
    actions = (
        "merge_into",
        "mark_not_duplicates",
        "deactivate_patients",
        "reactivate_patients",
        "record_no_known_allergies",
    )
    add_form = PatientAddForm

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
        (
            "Record",
            {"fields": ("mrn", "status", "merged_into_link", "organization", "registered_at_clinic", "user")},
        ),
        ("Possible duplicate", {"fields": ("duplicate_review", "possible_matches")}),
        _person,
        _contact,
        _insurance,
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def scope_queryset(self, qs, user):
        # AND-ed into the same WHERE (no subquery), so the (organization, ...) indexes stay in play.
        return qs & patients_for(user)

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return self.fieldsets
        if self._duplicate_refusal(request) is not None or "confirm_new_patient" in request.POST:
            # Shown once the registration met possible matches, next to them.
            registration = (
                "Possible duplicate",
                {"fields": ("confirm_new_patient",), "classes": ("possible-duplicate",)},
            )
            return (registration, *self.add_fieldsets)
        return self.add_fieldsets

    @staticmethod
    def _duplicate_refusal(request) -> PossibleDuplicate | None:
        rejected = getattr(request, "_opd_rejected", None)
        error = getattr(rejected, "error", None)
        return error if isinstance(error, PossibleDuplicate) else None

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = self._duplicate_refusal(request)
        if refusal is not None and "confirm_new_patient" in form.base_fields:
            field = form.base_fields["confirm_new_patient"] = copy.deepcopy(
                form.base_fields["confirm_new_patient"]
            )
            field.help_text = format_html(
                "{} Possible matches: {}", field.help_text, candidates_html(refusal.candidates)
            )
        return form

    def autocomplete_label(self, obj: Patient) -> str:
        return patient_label(obj)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/merge/",
                self.admin_site.admin_view(self.merge_view),
                name="patients_patient_merge",
            ),
            *super().get_urls(),
        ]

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
        found = patient_search(queryset, search_term)
        if request.path == reverse("admin:autocomplete"):
            found = found.exclude(status=PatientStatus.MERGED)  # nobody books or records on a merged record
        return found, False

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
                confirm_new_patient=bool(data.get("confirm_new_patient")),
                **fields,
            )
        adopt(obj, saved)

    @admin.display(description="name", ordering="last_name")
    def name(self, obj: Patient) -> str:
        return f"{obj.last_name}, {obj.first_name}"

    @admin.display(description="phone")
    def phone_number(self, obj: Patient) -> str:
        # National form for a number of the clinic's own country, international for any other.
        clinic = obj.registered_at_clinic
        return phone_display(obj.phone, clinic.default_phone_region if clinic is not None else "")

    @admin.display(description="merged into")
    def merged_into_link(self, obj: Patient):
        kept = obj.merged_into
        if kept is None:
            return "-"
        url = reverse("admin:patients_patient_change", args=[kept.pk])
        when = f"{obj.merged_at:%d %b %Y}" if obj.merged_at else ""
        return format_html('<a href="{}">{}</a> on {}', url, patient_label(kept), when)

    @admin.display(description="possible matches")
    def possible_matches(self, obj: Patient):
        if obj.pk is None or obj.status == PatientStatus.MERGED:
            return "-"
        found = possible_duplicates(
            organization_id=obj.organization_id,
            first_name=obj.first_name,
            last_name=obj.last_name,
            date_of_birth=obj.date_of_birth,
            phone=obj.phone,
            exclude_pk=obj.pk,
        )
        if not found:
            return "None found."
        return candidates_html(found)

    # Duplicates: review, and merge into another record

    @admin.action(description="Merge into… (choose the record to keep)", permissions=["change"])
    def merge_into(self, request, queryset):
        chosen = list(queryset.values_list("pk", flat=True)[:2])
        if len(chosen) != 1:
            self.message_user(
                request,
                "Select exactly one patient: the duplicate to merge into another record.",
                messages.ERROR,
            )
            return None
        return HttpResponseRedirect(reverse("admin:patients_patient_merge", args=[chosen[0]]))

    @admin.action(description="Mark reviewed: not a duplicate", permissions=["change"])
    def mark_not_duplicates(self, request, queryset):
        bulk_change(
            self,
            request,
            queryset,
            noun="patient",
            verb="marked reviewed",
            already=lambda patient: not patient.duplicate_review,
            change=lambda patient: patient_duplicate_reviewed(actor=request.user, patient=patient),
        )

    def merge_view(self, request, object_id):
        """Step 1: the MRN of the record to keep. Step 2: both records and what moves; confirm."""
        merge = self.get_object(request, object_id)
        if not self.has_change_permission(request, merge):
            raise DjangoPermissionDenied
        scope = self.get_queryset(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Merge {patient_label(merge)} into another record",
            "merge": merge,
            "merge_label": patient_label(merge),
            "error": "",
            "keep_mrn": request.POST.get("keep_mrn", "").strip(),
        }
        keep = None
        if context["keep_mrn"]:
            keep = scope.filter(mrn__iexact=context["keep_mrn"]).first()
            if keep is None:
                context["error"] = "No patient with this MRN in your organization."
        if keep is not None:
            try:
                if request.POST.get("confirm") == "yes":
                    moved = patient_merge(actor=request.user, keep=keep, merge=merge)
                    total = sum(moved.values())
                    self.message_user(
                        request,
                        f"{merge.mrn} was merged into {keep.mrn}: {total} records moved. {merge.mrn} is kept, "
                        "marked merged.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[keep.pk]))
                if keep.pk == merge.pk:
                    context["error"] = "That is this record: enter the MRN of the record to keep."
                else:
                    plan = merge_plan(merge)
                    context.update(
                        keep=keep,
                        keep_label=patient_label(keep),
                        plan=[(_relation_name(label), rows) for label, rows in sorted(plan.items()) if rows],
                        both_accounts=bool(keep.user_id and merge.user_id),
                    )
            except DomainError as exc:
                context["error"] = exc.message
        return render(request, "admin/patients/patient/merge.html", context)

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
