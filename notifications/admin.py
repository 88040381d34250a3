"""Messages, contact preferences and clinic reminder settings in the admin.

- Messages: read-only, filtered by status, channel, kind and clinic; "Resend" (admins and staff) calls
  notification_resend for each selected sent or failed message.
- Contact preferences (admins and staff) and clinic reminder lead times (admins) are saved through their
  services. Periodic tasks are django-celery-beat's own admin pages (Periodic tasks).

Permissions and scoping: see opd.core.admin_mixins.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    VIEW,
    OpdModelAdmin,
    ScopedRelatedFilter,
    adopt,
    in_clinic_time,
    report_bulk,
)
from opd.core.crypto import blind_index_candidates
from opd.core.errors import DomainError
from opd.core.models import Role
from opd.core.tenancy import restrict_to_clinics
from patients.admin import patient_page_section

from .models import ClinicNotificationSettings, ContactPreference, Notification
from .selectors import scope_notifications
from .services import clinic_notification_settings_set, contact_preference_set, notification_resend


@admin.register(Notification)
class NotificationAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, "resend"}, Role.STAFF: {VIEW, "resend"}}
    list_display = ("created_at", "kind", "channel", "status", "to", "patient", "due", "attempts", "sent_at")
    list_filter = ("status", "channel", "kind", ("clinic", ScopedRelatedFilter))
    # The address is encrypted: get_search_results finds it through its blind index.
    search_fields = ("=patient__mrn", "=dedup_key", "appointment__id__exact")
    search_help_text = "Exact MRN, e-mail address, phone number, appointment id or deduplication key."
    list_select_related = ("patient", "clinic")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("resend_notifications",)
    fieldsets = (
        ("Message", {"fields": ("kind", "channel", "to", "subject", "body", "body_html")}),
        ("Recipient", {"fields": ("organization", "clinic", "patient", "user", "appointment")}),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "scheduled_for",
                    "next_attempt_at",
                    "attempts",
                    "last_error",
                    "sent_at",
                    "finished_at",
                    "provider_message_id",
                )
            },
        ),
        ("Bookkeeping", {"fields": ("dedup_key", "lead_minutes", "resend_of", "created_by", "created_at")}),
    )

    def scope_queryset(self, qs, user):
        return scope_notifications(qs, user)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        candidates = blind_index_candidates("address", search_term)
        if candidates:
            results = results | queryset.filter(to_index__in=candidates)
        return results, may_have_duplicates

    def has_resend_permission(self, request) -> bool:
        return self.allowed(request, "resend")

    @admin.display(description="due", ordering="scheduled_for")
    def due(self, obj: Notification) -> str:
        return in_clinic_time(obj.scheduled_for, obj.clinic.time_zone if obj.clinic else "UTC")

    @admin.action(description="Resend selected messages", permissions=["resend"])
    def resend_notifications(self, request, queryset):
        done, failures = 0, []
        for notification in queryset:
            try:
                notification_resend(actor=request.user, notification=notification)
                done += 1
            except DomainError as exc:
                failures.append((str(notification), exc.message))
        report_bulk(
            self,
            request,
            done=done,
            done_message=f"Queued {done} message{'s' if done != 1 else ''} to be sent again.",
            failures=failures,
            failed_intro=f"Could not resend {len(failures)}:",
        )


@admin.register(ContactPreference)
class ContactPreferenceAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW, ADD, CHANGE}}
    list_display = ("patient", "email_enabled", "sms_enabled", "in_app_enabled", "preferred_channel")
    list_filter = ("email_enabled", "sms_enabled", "in_app_enabled", "preferred_channel")
    search_fields = ("=patient__mrn", "^patient__last_name")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    fields = ("patient", "email_enabled", "sms_enabled", "in_app_enabled", "preferred_channel")
    locked_on_change = ("patient",)

    def scope_queryset(self, qs, user):
        return qs.filter(patient__organization_id=user.organization_id)

    def save_model(self, request, obj, form, change):
        saved = contact_preference_set(
            actor=request.user,
            patient=obj.patient if change else form.cleaned_data["patient"],
            email_enabled=form.cleaned_data["email_enabled"],
            sms_enabled=form.cleaned_data["sms_enabled"],
            in_app_enabled=form.cleaned_data["in_app_enabled"],
            preferred_channel=form.cleaned_data["preferred_channel"],
        )
        adopt(obj, saved)


@admin.register(ClinicNotificationSettings)
class ClinicNotificationSettingsAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW}}
    list_display = ("clinic", "reminder_lead_minutes", "updated_at")
    list_select_related = ("clinic",)
    fields = ("clinic", "reminder_lead_minutes")
    locked_on_change = ("clinic",)

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user)

    def save_model(self, request, obj, form, change):
        saved = clinic_notification_settings_set(
            actor=request.user,
            clinic=obj.clinic if change else form.cleaned_data["clinic"],
            reminder_lead_minutes=form.cleaned_data["reminder_lead_minutes"],
        )
        adopt(obj, saved)


@patient_page_section
def contact_preferences_section(request, patient) -> dict:
    """The patient's page shows how they want to hear from the clinic (the patient row is already scoped
    by the patient admin)."""
    preference = ContactPreference.objects.filter(patient=patient).first()
    if preference is None:
        summary = "Not set: every channel with an address (email, SMS, in-app)."
        url = reverse("admin:notifications_contactpreference_add") + f"?patient={patient.pk}"
    else:
        channels = [
            name
            for name, enabled in (
                ("email", preference.email_enabled),
                ("SMS", preference.sms_enabled),
                ("in-app", preference.in_app_enabled),
            )
            if enabled
        ]
        summary = (
            f"{', '.join(channels) or 'no channel'}; preferred: {preference.get_preferred_channel_display()}."
        )
        url = reverse("admin:notifications_contactpreference_change", args=[preference.pk])
    return {"contact_preferences": {"summary": summary.capitalize(), "url": url}}
