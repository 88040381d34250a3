"""Consultations and care notes in the admin. Every write goes through a service.

- Consultations: the notes and vitals of a draft are edited through consultation_update (which stores
  NEWS2 and flags the appointment as priority when the band is medium or high); NEWS2, BMI, the
  prescriptions, results and addenda are shown read-only; a completed consultation is read-only.
  Consultations are opened from the appointment by its doctor (API or panel), never added here.
- Care notes: added with care_note_create; read-only afterwards.

Clinical notes are hidden from role staff and role admin alike (see consultations.selectors): the
consultation pages are for superusers only. Staff add and read care notes at their clinics; admins
read them. Permissions and scoping: see opd.core.admin_mixins.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    VIEW,
    LocalDaySearchMixin,
    OpdModelAdmin,
    OpdTabularInline,
    ScopedRelatedFilter,
    adopt,
    in_clinic_time,
)
from opd.core.clinic_time import DAY_SEARCH_HELP
from opd.core.models import Role

from .access import VIEWED, log_reads
from .models import (
    NOTE_FIELDS,
    VITAL_FIELDS,
    Addendum,
    CareNote,
    Consultation,
    Prescription,
    Result,
)
from .selectors import care_notes_for, consultations_for
from .services import CONSULTATION_FIELDS, care_note_create, consultation_update

CLINICAL_ONLY_SUPERUSERS: dict = {}  # no role sees clinical notes in the admin; superusers do


class ReadLoggedAdminMixin:
    """Opening a clinical row's page in the admin is a read of the record: logged (`record.viewed`,
    via admin), with the rows its inlines show (`shown_with`)."""

    def shown_with(self, obj) -> list:
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                log_reads(request.user, VIEWED, [obj, *self.shown_with(obj)], via="admin")
        return response


class ClinicalInline(OpdTabularInline):
    role_permissions = CLINICAL_ONLY_SUPERUSERS
    superuser_permissions = {VIEW}
    extra = 0
    can_delete = False

    def scope_queryset(self, qs, user):
        return qs.none()


class PrescriptionInline(ClinicalInline):
    model = Prescription
    fields = ("lines", "notes", "issued_at", "print_link")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("items")

    @admin.display(description="medication lines")
    def lines(self, obj: Prescription) -> str:
        return format_html_join(
            "",
            "<div>{} {}: {} {} {}, {} (qty {})</div>",
            (
                (
                    item.medication,
                    item.strength,
                    item.dose,
                    item.get_route_display(),
                    item.frequency,
                    item.duration or "no set duration",
                    item.quantity,
                )
                for item in obj.items.all()
            ),
        )

    @admin.display(description="print")
    def print_link(self, obj: Prescription) -> str:
        url = reverse("consultations:prescription-print", args=[obj.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">Printable page</a>', url)


class ResultInline(ClinicalInline):
    model = Result
    fields = (
        "record_type",
        "test_name",
        "value",
        "unit",
        "reference_range",
        "is_abnormal",
        "attachment_name",
    )
    readonly_fields = fields


class AddendumInline(ClinicalInline):
    model = Addendum
    fields = ("created_at", "author", "text")
    readonly_fields = fields


class ConsultationForm(forms.ModelForm):
    class Meta:
        model = Consultation
        fields = CONSULTATION_FIELDS

    def clean_diagnosis_code(self) -> str:
        # The service stores codes upper-case; the model's constraint check here must see them that way.
        return (self.cleaned_data.get("diagnosis_code") or "").strip().upper()


@admin.register(Consultation)
class ConsultationAdmin(LocalDaySearchMixin, ReadLoggedAdminMixin, OpdModelAdmin):
    role_permissions = CLINICAL_ONLY_SUPERUSERS
    superuser_permissions = {VIEW, CHANGE}
    form = ConsultationForm

    def shown_with(self, obj: Consultation) -> list:
        return [*obj.prescriptions.all(), *obj.results.all()]

    inlines = (PrescriptionInline, ResultInline, AddendumInline)
    list_display = ("started_local", "patient", "doctor", "clinic", "status", "news2_total", "news2_band")
    list_filter = ("status", "news2_band", ("clinic", ScopedRelatedFilter))
    search_fields = ("=patient__mrn", "^patient__last_name", "^patient__first_name")
    search_help_text = f"Patient's name (start of it), exact MRN, or {DAY_SEARCH_HELP}."
    list_select_related = ("patient", "doctor__user", "clinic")
    # The appointment's clinic-local day, not started_at (a UTC moment).
    local_day_field = "appointment__slot__date"
    date_hierarchy = "appointment__slot__date"
    ordering = ("-started_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    _record = ("appointment", "patient", "doctor", "clinic", "status", "started_local", "completed_local")
    _computed = ("news2_summary", "bmi_display")
    fieldsets = (
        ("Consultation", {"fields": _record}),
        ("Notes", {"fields": NOTE_FIELDS}),
        ("Vitals", {"fields": (*VITAL_FIELDS, "bmi_display")}),
        ("NEWS2", {"fields": ("news2_summary",)}),
    )

    def scope_queryset(self, qs, user):
        return qs & consultations_for(user)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # opened from the appointment by its doctor

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_draft:
            return False  # completed: read-only; corrections are addenda
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return (*self._record, *self._computed)

    @admin.display(description="started (clinic time)", ordering="started_at")
    def started_local(self, obj: Consultation) -> str:
        return in_clinic_time(obj.started_at, obj.clinic.time_zone)

    @admin.display(description="completed (clinic time)")
    def completed_local(self, obj: Consultation) -> str:
        return in_clinic_time(obj.completed_at, obj.clinic.time_zone)

    @admin.display(description="BMI (derived)")
    def bmi_display(self, obj: Consultation) -> str:
        return f"{obj.bmi} kg/m²" if obj.bmi is not None else "-"

    @admin.display(description="NEWS2")
    def news2_summary(self, obj: Consultation) -> str:
        if obj.news2_total is None:
            return f"Incomplete: still to record {', '.join(obj.news2_missing)}."
        scores = ", ".join(
            f"{name.replace('_', ' ')} {score}"
            for name, score in obj.news2_sub_scores.items()  # type: ignore[union-attr]  # stored with the total
        )
        return format_html(
            "<strong>{}</strong>, {} risk (SpO2 scale {})<br>{}",
            obj.news2_total,
            obj.get_news2_band_display(),
            obj.news2_spo2_scale,
            scores,
        )

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in CONSULTATION_FIELDS}
        if not changes:
            return
        current = Consultation.objects.get(pk=obj.pk)
        saved = consultation_update(actor=request.user, consultation=current, **changes)
        adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        # The inlines are read-only; the admin's change message still reads what they saved: nothing.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


@admin.register(CareNote)
class CareNoteAdmin(LocalDaySearchMixin, ReadLoggedAdminMixin, OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW}, Role.STAFF: {VIEW, ADD}}
    superuser_permissions = {VIEW, ADD}
    list_display = ("created_local", "patient", "clinic", "category", "author", "short_text")
    list_filter = ("category", ("clinic", ScopedRelatedFilter))
    search_fields = ("=patient__mrn", "^patient__last_name", "^patient__first_name")
    search_help_text = f"Patient's name (start of it), exact MRN, or {DAY_SEARCH_HELP}."
    list_select_related = ("patient", "clinic", "author")
    # The note's clinic-local day, not created_at (a UTC moment).
    local_day_field = "date"
    date_hierarchy = "date"
    ordering = ("-created_at", "-id")
    autocomplete_fields = ("patient",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    add_fields = ("patient", "clinic", "category", "text")
    fields = ("patient", "clinic", "category", "text", "author", "created_local", "date")

    def scope_queryset(self, qs, user):
        return qs & care_notes_for(user)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.fields

    @admin.display(description="written (clinic time)", ordering="created_at")
    def created_local(self, obj: CareNote) -> str:
        return in_clinic_time(obj.created_at, obj.clinic.time_zone)

    @admin.display(description="note")
    def short_text(self, obj: CareNote) -> str:
        return obj.text if len(obj.text) <= 80 else f"{obj.text[:79]}…"

    def save_model(self, request, obj, form, change):
        if change:
            return  # unreachable: no change permission
        saved = care_note_create(
            actor=request.user,
            patient=form.cleaned_data["patient"],
            clinic=form.cleaned_data["clinic"],
            category=form.cleaned_data["category"],
            text=form.cleaned_data["text"],
        )
        adopt(obj, saved)
