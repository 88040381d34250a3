"""Slots and appointments in the admin.

- Slots: read-only; they come from availability.
- Appointments: booked with appointment_book (channel "admin"), cancelled with appointment_cancel in
  bulk; reception checks patients in (appointment_check_in issues the token) and flags priority
  (appointment_set_priority) with actions. The change page is read-only (seat, slot, status and token
  only change through services).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.template.response import TemplateResponse
from django.utils import timezone

from opd.core.admin_mixins import (
    ADD,
    VIEW,
    LocalDaySearchMixin,
    OpdModelAdmin,
    ScopedRelatedFilter,
    adopt,
    in_clinic_time,
    report_bulk,
)
from opd.core.clinic_time import DAY_SEARCH_HELP, zone_label
from opd.core.errors import DomainError
from opd.core.models import Role
from opd.core.tenancy import restrict_to_clinics

from ..models import Appointment, AppointmentStatus, ApprovalStatus, BookingChannel, Slot
from ..services import appointment_book, appointment_cancel, appointment_check_in, appointment_set_priority
from ..services.booking import CANCELLABLE
from .common import ClinicTimeMixin, WhenFilter, plural
from .desk import DeskMixin


class HasFreeSeatsFilter(admin.SimpleListFilter):
    title = "free seats"
    parameter_name = "free_seats"

    def lookups(self, request, model_admin):
        return [("yes", "Has free seats"), ("no", "Full")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(is_active=True, booked_count__lt=F("capacity"))
        if self.value() == "no":
            return queryset.filter(booked_count__gte=F("capacity"))
        return queryset


@admin.register(Slot)
class SlotAdmin(LocalDaySearchMixin, ClinicTimeMixin, OpdModelAdmin):
    """Read-only: slots are planned from availability (slots_generate), never typed in."""

    role_permissions = {Role.ADMIN: {VIEW}, Role.STAFF: {VIEW}}
    list_display = ("start_local", "end_local", "doctor", "department", "seats", "is_active")
    list_filter = (
        WhenFilter,
        HasFreeSeatsFilter,
        "is_active",
        ("clinic", ScopedRelatedFilter),
        ("department", ScopedRelatedFilter),
    )
    search_fields = ("^doctor__user__last_name", "^doctor__user__first_name", "department__name")
    search_help_text = f"Doctor's name, department, or {DAY_SEARCH_HELP}."
    list_select_related = ("doctor__user", "department__clinic", "clinic")
    str_select_related = ("doctor__user", "clinic")
    local_day_field = "date"
    date_hierarchy = "date"
    ordering = ("start", "doctor_id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "doctor",
        "department",
        "clinic",
        "date",
        "start_local",
        "end_local",
        "capacity",
        "booked_count",
        "is_active",
        "created_at",
    )
    readonly_fields = fields

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user)

    def get_search_results(self, request, queryset, search_term):
        if request.GET.get("model_name") == "appointment" and request.GET.get("field_name") == "slot":
            # Picking a slot to book: only the ones that can still take a booking.
            queryset = queryset.filter(
                is_active=True,
                start__gt=timezone.now(),
                booked_count__lt=F("capacity"),
                doctor__approval_status=ApprovalStatus.APPROVED,
            )
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="booked / seats")
    def seats(self, obj: Slot) -> str:
        return f"{obj.booked_count} / {obj.capacity}"


@admin.register(Appointment)
class AppointmentAdmin(DeskMixin, LocalDaySearchMixin, ClinicTimeMixin, OpdModelAdmin):
    role_permissions = {
        Role.ADMIN: {VIEW, ADD, "cancel", "check_in", "priority", "reschedule"},
        Role.STAFF: {VIEW, ADD, "cancel", "check_in", "priority", "reschedule"},
    }
    list_display = ("start_local", "patient", "doctor", "department", "state", "token", "channel")
    list_filter = (
        WhenFilter,
        "status",
        "channel",
        ("clinic", ScopedRelatedFilter),
        ("department", ScopedRelatedFilter),
        ("doctor", ScopedRelatedFilter),
    )
    search_fields = ("=patient__mrn", "^patient__last_name", "^patient__first_name")
    search_help_text = f"Patient's name (start of it), exact MRN, or {DAY_SEARCH_HELP}."
    list_select_related = ("patient", "doctor__user", "department__clinic", "clinic")
    str_select_related = ("patient", "doctor__user", "clinic")
    local_day_field = "slot__date"
    # The slot's clinic-local day, not `start` (a UTC moment): the hierarchy's days are the clinic's.
    date_hierarchy = "slot__date"
    ordering = ("start", "id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    autocomplete_fields = ("patient", "slot")
    actions = ("check_in_appointments", "flag_priority", "clear_priority", "cancel_appointments")

    add_fieldsets = ((None, {"fields": ("patient", "slot", "reason")}),)
    fieldsets = (
        (
            "Appointment",
            {
                "fields": (
                    "patient",
                    "start_local",
                    "end_local",
                    "doctor",
                    "department",
                    "clinic",
                    "slot",
                    "seat",
                    "state",
                    "reason",
                )
            },
        ),
        ("Booking", {"fields": ("channel", "booked_by", "booked_at", "reschedule_count")}),
        ("Queue", {"fields": ("token_number", "token_date", "is_priority", "priority_reason", "called_at")}),
        ("Progress", {"fields": ("checked_in_at", "started_at", "completed_at", "no_show_at")}),
        ("Cancellation", {"fields": ("cancelled_at", "cancelled_by", "cancellation_reason")}),
    )

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The read-only page shows its stored moments (booked, checked in, ...) on the clinic's clock and
        names the zone; the desk's actions are buttons above it."""
        obj = self.get_object(request, unquote(object_id))
        clinic = obj.clinic
        context = {
            **(extra_context or {}),
            "desk": {
                "may_check_in": self.allowed(request, "check_in") and obj.status == AppointmentStatus.BOOKED,
                "may_cancel": self.allowed(request, "cancel") and obj.status in CANCELLABLE,
                "may_reschedule": self.allowed(request, "reschedule")
                and obj.status == AppointmentStatus.BOOKED,
                "has_token": obj.token_number is not None,
                "today_url": self._today_url(clinic),
            },
        }
        return self.clinic_time_change_view(request, object_id, form_url, context)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        note = f"Times in {zone_label(obj.clinic)}, the clinic's time zone."
        return tuple(
            (name, {**options, "description": note})
            if name in ("Booking", "Progress", "Queue")
            else (name, options)
            for name, options in self.fieldsets
        )

    def get_readonly_fields(self, request, obj=None):
        # There is no change permission, so a saved appointment shows every field read-only anyway;
        # the computed ones must be named here to be shown at all.
        return () if obj is None else ("start_local", "end_local", "state")

    def has_cancel_permission(self, request) -> bool:
        return self.allowed(request, "cancel")

    def has_check_in_permission(self, request) -> bool:
        return self.allowed(request, "check_in")

    def has_priority_permission(self, request) -> bool:
        return self.allowed(request, "priority")

    @admin.display(description="status", ordering="status")
    def state(self, obj: Appointment) -> str:
        # The same words as the dashboard, the waiting room and the portal (scheduling.models.STATUS_LABELS).
        return obj.status_label

    @admin.display(description="token", ordering="token_number")
    def token(self, obj: Appointment) -> str:
        return obj.token_label or "-"

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied  # unreachable: the change page is read-only
        booked = appointment_book(
            actor=request.user,
            patient=form.cleaned_data["patient"],
            slot=form.cleaned_data["slot"],
            reason=form.cleaned_data.get("reason", ""),
            channel=BookingChannel.ADMIN,
        )
        adopt(obj, booked)

    def _label(self, appointment: Appointment) -> str:
        return f"{appointment.patient} at {in_clinic_time(appointment.start, appointment.clinic.time_zone)}"

    def _each(self, request, queryset, change, *, verb: str, done_message) -> None:
        """Run `change(appointment)` on each selected row and report how it went."""
        done, failures = 0, []
        for appointment in queryset.select_related("patient", "clinic", "department"):
            try:
                change(appointment)
                done += 1
            except DomainError as exc:
                failures.append((self._label(appointment), exc.message))
        report_bulk(
            self,
            request,
            done=done,
            done_message=done_message(done),
            failures=failures,
            failed_intro=f"Could not {verb} {plural(len(failures), 'appointment')}:",
        )

    @admin.action(description="Check in selected patients (issue tokens)", permissions=["check_in"])
    def check_in_appointments(self, request, queryset):
        tokens = []

        def check_in(appointment: Appointment) -> None:
            checked_in = appointment_check_in(actor=request.user, appointment=appointment)
            checked_in.department = appointment.department
            tokens.append(f"{appointment.patient.full_name}: {checked_in.token_label}")

        self._each(
            request,
            queryset,
            check_in,
            verb="check in",
            done_message=lambda n: f"Checked in {plural(n, 'patient')}. Tokens: {'; '.join(tokens)}.",
        )

    @admin.action(description="Flag selected patients as priority (seen first)", permissions=["priority"])
    def flag_priority(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: appointment_set_priority(
                actor=request.user, appointment=a, is_priority=True, reason="Flagged by staff"
            ),
            verb="flag",
            done_message=lambda n: f"Flagged {plural(n, 'appointment')} as priority.",
        )

    @admin.action(description="Clear the priority flag of selected patients", permissions=["priority"])
    def clear_priority(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: appointment_set_priority(actor=request.user, appointment=a, is_priority=False),
            verb="unflag",
            done_message=lambda n: f"Cleared the priority flag of {plural(n, 'appointment')}.",
        )

    @admin.action(description="Cancel selected appointments", permissions=["cancel"])
    def cancel_appointments(self, request, queryset):
        queryset = queryset.select_related("patient", "clinic", "doctor__user")
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Cancel appointments",
                "opts": self.opts,
                "rows": [(appointment, self._label(appointment)) for appointment in queryset],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request, "admin/scheduling/appointment/cancel_selected_confirmation.html", context
            )
        reason = request.POST.get("cancellation_reason", "").strip()[:500] or "Cancelled by the clinic."
        cancelled, failures = 0, []
        for appointment in queryset:
            try:
                appointment_cancel(
                    actor=request.user, appointment=appointment, reason=reason, channel=BookingChannel.ADMIN
                )
                cancelled += 1
            except DomainError as exc:
                failures.append((self._label(appointment), exc.message))
        report_bulk(
            self,
            request,
            done=cancelled,
            done_message=f"Cancelled {plural(cancelled, 'appointment')}.",
            failures=failures,
            failed_intro=f"Could not cancel {plural(len(failures), 'appointment')}:",
        )
        return None
