"""Scheduled reports in the admin: administrators define them; each build is listed with its file.

Administrators manage their organization's report definitions (superusers every organization's); staff
see nothing here, because a report may cover every clinic. Saving a definition goes through
report_definition_save, which also keeps its beat schedule (a PeriodicTask) in step. Runs are read-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from opd.core.admin_mixins import ADD, CHANGE, DELETE, VIEW, OpdModelAdmin, adopt, report_bulk
from opd.core.errors import DomainError
from opd.core.models import Role

from .models import ReportDefinition, ReportRun
from .services import EDITABLE_FIELDS, report_definition_delete, report_definition_save, report_run_request


class ReportRunInline(admin.TabularInline):
    model = ReportRun
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("created_at", "status", "attempts", "period_start", "period_end", "rows", "error", "download")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = True

    verbose_name_plural = "latest runs (all of them under Report runs)"

    def get_queryset(self, request):
        # The parent admin already decided who sees this definition; show its latest runs only.
        qs = super().get_queryset(request)
        return qs.order_by("-created_at")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        latest = list(obj.runs.order_by("-created_at").values_list("pk", flat=True)[:20]) if obj else []
        formset.get_queryset = lambda self: ReportRun.objects.filter(pk__in=latest).order_by("-created_at")
        return formset

    # Model permissions are not used in this project; the parent admin's role check already applied.
    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="file")
    def download(self, run: ReportRun) -> str:
        if not run.file:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("analytics:report-download", args=[run.pk]))


@admin.register(ReportDefinition)
class ReportDefinitionAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE, DELETE}}
    list_display = ("name", "kind", "format", "schedule", "is_active", "last_run")
    list_filter = ("kind", "format", "is_active")
    search_fields = ("name",)
    readonly_fields = ("periodic_task", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("organization", "name", "kind", "format", "filters", "recipients", "is_active")}),
        (
            "Schedule (crontab, in the time zone below)",
            {"fields": ("minute", "hour", "day_of_week", "day_of_month", "month_of_year", "time_zone")},
        ),
        ("Record", {"fields": ("periodic_task", "created_by", "created_at", "updated_at")}),
    )
    inlines = (ReportRunInline,)
    actions = ("run_now",)

    def scope_queryset(self, qs, user):
        return qs.filter(organization_id=user.organization_id)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
        current = ReportDefinition.objects.get(pk=obj.pk) if change else None
        organization = data.get("organization") or request.user.organization
        saved = report_definition_save(
            actor=request.user, organization=organization, definition=current, **fields
        )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        report_definition_delete(actor=request.user, definition=obj)

    def delete_queryset(self, request, queryset):
        for definition in queryset:
            report_definition_delete(actor=request.user, definition=definition)

    @admin.display(description="schedule")
    def schedule(self, obj: ReportDefinition) -> str:
        return obj.schedule_text

    @admin.display(description="last run")
    def last_run(self, obj: ReportDefinition) -> str:
        run = obj.runs.order_by("-created_at").first()
        return f"{run.get_status_display()} {run.created_at:%Y-%m-%d %H:%M} UTC" if run else "-"

    @admin.action(description="Build and send the selected reports now")
    def run_now(self, request, queryset):
        done, failures = 0, []
        for definition in queryset:
            try:
                report_run_request(actor=request.user, definition=definition)
                done += 1
            except DomainError as exc:
                failures.append((definition, exc.message))
        report_bulk(
            self,
            request,
            done=done,
            done_message=f"{done} report(s) queued; they arrive by e-mail and are listed under each report.",
            failures=failures,
            failed_intro="Not queued:",
        )


@admin.register(ReportRun)
class ReportRunAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW}}
    list_display = (
        "definition",
        "created_at",
        "status",
        "attempts",
        "period_start",
        "period_end",
        "download",
    )
    list_filter = ("status",)
    list_select_related = ("definition",)
    readonly_fields = (
        "definition",
        "organization",
        "task_id",
        "status",
        "attempts",
        "error",
        "period_start",
        "period_end",
        "clinic_ids",
        "download",
        "content_type",
        "rows",
        "recipients",
        "emailed_at",
        "started_at",
        "finished_at",
        "created_at",
    )
    fields = readonly_fields

    def scope_queryset(self, qs, user):
        return qs.filter(organization_id=user.organization_id)

    @admin.display(description="file")
    def download(self, run: ReportRun) -> str:
        if not run.file:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("analytics:report-download", args=[run.pk]))
