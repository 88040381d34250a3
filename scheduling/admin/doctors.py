"""Doctors and their availability in the admin.

- Doctor approval: actions calling doctor_set_approval (role admin). The profile (and the room shown on
  the waiting-room display): doctor_create / doctor_update, which hold its rules; staff may only edit a
  doctor's availability.
- Availability rules and exceptions (own pages and inlines on the doctor): availability_* services,
  which re-plan the doctor's slots. A service's refusal is shown beside the row, not as a 500.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Q
from django.forms import ModelForm
from django.utils import timezone

from opd.core.admin_mixins import (
    ADD,
    CHANGE,
    DELETE,
    VIEW,
    OpdModelAdmin,
    OpdTabularInline,
    ScopedRelatedFilter,
    adopt,
    bulk_change,
)
from opd.core.models import Department, Membership, Role
from opd.core.tenancy import clinic_ids_for, restrict_to_clinics

from ..models import ApprovalStatus, AvailabilityException, AvailabilityRule, Doctor
from ..services import (
    availability_exception_create,
    availability_exception_delete,
    availability_rule_create,
    availability_rule_delete,
    availability_rule_update,
    doctor_create,
    doctor_set_approval,
    doctor_update,
)
from ..services.availability import RULE_FIELDS
from ..services.doctors import PROFILE_FIELDS

EXCEPTION_FIELDS = (
    "kind",
    "date",
    "start_time",
    "end_time",
    "department",
    "slot_minutes",
    "capacity",
    "reason",
)
AVAILABILITY_PERMISSIONS = {VIEW, ADD, CHANGE, DELETE}
# There is no exception update service: an exception is added or removed, never edited.
EXCEPTION_PERMISSIONS = {VIEW, ADD, DELETE}


def scope_doctors(qs, user):
    """Admins: the organization's doctors. Staff: doctors who work at one of their clinics."""
    qs = qs.filter(organization_id=user.organization_id)
    if user.role == Role.ADMIN:
        return qs
    ids = clinic_ids_for(user)
    # Subqueries rather than joins: no duplicate rows, no DISTINCT.
    in_departments = Doctor.departments.through.objects.filter(department__clinic_id__in=ids)
    members = Membership.objects.filter(clinic_id__in=ids)
    return qs.filter(Q(pk__in=in_departments.values("doctor_id")) | Q(user_id__in=members.values("user_id")))


# Availability -----------------------------------------------------------------------------------------


def _rule_changes(form) -> dict:
    return {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.changed_data}


def _save_rule(request, form, doctor: Doctor, *, delete: bool = False) -> AvailabilityRule | None:
    rule = form.instance
    if delete:
        availability_rule_delete(actor=request.user, rule=AvailabilityRule.objects.get(pk=rule.pk))
        return None
    if rule.pk is None:
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data}
        return availability_rule_create(actor=request.user, doctor=doctor, **fields)
    # The form already wrote its values onto form.instance; the service starts from the stored row.
    current = AvailabilityRule.objects.select_related("doctor").get(pk=rule.pk)
    return availability_rule_update(actor=request.user, rule=current, **_rule_changes(form))


def _save_exception(request, form, doctor: Doctor, *, delete: bool = False) -> AvailabilityException | None:
    exception = form.instance
    if delete:
        availability_exception_delete(
            actor=request.user, exception=AvailabilityException.objects.get(pk=exception.pk)
        )
        return None
    if exception.pk is None:
        fields = {name: form.cleaned_data[name] for name in EXCEPTION_FIELDS if name in form.cleaned_data}
        return availability_exception_create(actor=request.user, doctor=doctor, **fields)
    raise PermissionDenied  # unreachable: exceptions are not edited (no change permission)


class AvailabilityRuleInline(OpdTabularInline):
    model = AvailabilityRule
    role_permissions = {Role.ADMIN: AVAILABILITY_PERMISSIONS, Role.STAFF: AVAILABILITY_PERMISSIONS}
    fields = RULE_FIELDS
    extra = 0

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user, "department__clinic")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "valid_from":
            kwargs.setdefault("initial", timezone.localdate)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class AvailabilityExceptionInline(OpdTabularInline):
    model = AvailabilityException
    role_permissions = {Role.ADMIN: EXCEPTION_PERMISSIONS, Role.STAFF: EXCEPTION_PERMISSIONS}
    fields = EXCEPTION_FIELDS
    extra = 0

    def scope_queryset(self, qs, user):
        return scope_exceptions(qs, user).filter(date__gte=timezone.localdate() - dt.timedelta(days=1))


def scope_exceptions(qs, user):
    """Exceptions at the user's clinics, and whole-day leave (no department) of doctors they see."""
    visible_doctors = scope_doctors(Doctor.objects.all(), user)
    return qs.filter(
        Q(department__clinic_id__in=clinic_ids_for(user))
        | Q(department__isnull=True, doctor__in=visible_doctors.values("pk"))
    )


class DoctorForm(ModelForm):
    class Meta:
        model = Doctor
        fields = ("user", "organization", "specialization", "license_number", "departments", "room")


@admin.register(Doctor)
class DoctorAdmin(OpdModelAdmin):
    role_permissions = {
        Role.ADMIN: {VIEW, ADD, CHANGE, "approve"},
        # Change: staff keep the availability (inlines) of the doctors at their clinics up to date;
        # the profile itself is read-only to them.
        Role.STAFF: {VIEW, CHANGE},
    }
    form = DoctorForm
    inlines = (AvailabilityRuleInline, AvailabilityExceptionInline)
    list_display = (
        "name",
        "specialization",
        "license_number",
        "room",
        "approval_status",
        "approved_at",
        "works_in",
    )
    list_filter = ("approval_status", ("departments", ScopedRelatedFilter))
    search_fields = ("^user__last_name", "^user__first_name", "=user__username", "=license_number")
    list_select_related = ("user", "organization")
    str_select_related = ("user",)
    list_prefetch_related = (
        Prefetch("departments", queryset=Department.objects.select_related("clinic").order_by("name")),
    )
    ordering = ("user__last_name", "user__first_name", "id")
    autocomplete_fields = ("user", "departments")
    locked_on_change = ("organization", "user")
    actions = ("approve_doctors", "suspend_doctors")

    _profile = ("user", "organization", "specialization", "license_number", "departments", "room")
    add_fieldsets = ((None, {"fields": _profile}),)
    fieldsets = (
        ("Profile", {"fields": _profile}),
        ("Approval", {"fields": ("approval_status", "approved_at")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def scope_queryset(self, qs, user):
        return scope_doctors(qs, user)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        fixed = ("approval_status", "approved_at", "created_at", "updated_at")
        if not self.allowed(request, ADD):  # staff: the profile is the administrators' business
            return (*fixed, *self._profile)
        return fixed

    def get_list_display(self, request):
        if request.user.is_superuser:
            return (*self.list_display, "organization")
        return self.list_display

    def has_approve_permission(self, request) -> bool:
        return self.allowed(request, "approve")

    @admin.display(description="doctor", ordering="user__last_name")
    def name(self, obj: Doctor) -> str:
        return obj.display_name

    @admin.display(description="departments")
    def works_in(self, obj: Doctor) -> str:
        return ", ".join(str(d) for d in obj.departments.all())

    def save_model(self, request, obj, form, change):
        if change:
            changes = self.changes(form, (*PROFILE_FIELDS, "departments"))
            if not changes:
                return  # only the availability inlines were edited; leave the profile row alone
            saved = doctor_update(actor=request.user, doctor=obj, **changes)
        else:
            data = form.cleaned_data
            saved = doctor_create(
                actor=request.user,
                user=data["user"],
                organization=data["organization"],
                departments=data.get("departments") or (),
                **{name: data[name] for name in PROFILE_FIELDS if name in data},
            )
        adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        save = {AvailabilityRule: _save_rule, AvailabilityException: _save_exception}.get(formset.model)
        if save is None:
            return super().save_formset(request, form, formset, change)
        self.save_rows_through(request, formset, save)
        return None

    def _set_approval(self, request, queryset, status: str, verb: str) -> None:
        bulk_change(
            self,
            request,
            queryset,
            noun="doctor",
            verb=verb,
            already=lambda doctor: doctor.approval_status == status,
            change=lambda doctor: doctor_set_approval(actor=request.user, doctor=doctor, status=status),
        )

    @admin.action(description="Approve selected doctors (open their slots)", permissions=["approve"])
    def approve_doctors(self, request, queryset):
        self._set_approval(request, queryset, ApprovalStatus.APPROVED, "approved")

    @admin.action(description="Suspend selected doctors (close their free slots)", permissions=["approve"])
    def suspend_doctors(self, request, queryset):
        self._set_approval(request, queryset, ApprovalStatus.SUSPENDED, "suspended")


class AvailabilityAdminBase(OpdModelAdmin):
    list_select_related = ("doctor__user", "department__clinic")
    search_fields: ClassVar[tuple[str, ...]] = (
        "^doctor__user__last_name",
        "^doctor__user__first_name",
        "department__name",
    )
    autocomplete_fields = ("doctor",)
    locked_on_change = ("doctor",)

    @admin.display(description="doctor", ordering="doctor__user__last_name")
    def doctor_name(self, obj) -> str:
        return obj.doctor.display_name

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("doctor"):
            self.delete_model(request, obj)


@admin.register(AvailabilityRule)
class AvailabilityRuleAdmin(AvailabilityAdminBase):
    role_permissions = {Role.ADMIN: AVAILABILITY_PERMISSIONS, Role.STAFF: AVAILABILITY_PERMISSIONS}
    list_display = (
        "doctor_name",
        "weekday",
        "start_time",
        "end_time",
        "department",
        "slot_minutes",
        "capacity",
        "valid_from",
        "valid_to",
    )
    list_filter = ("weekday", ("department", ScopedRelatedFilter), ("doctor", ScopedRelatedFilter))
    date_hierarchy = "valid_from"
    ordering = ("doctor__user__last_name", "weekday", "start_time")
    fields = ("doctor", *RULE_FIELDS)

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs, user, "department__clinic")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "valid_from":
            kwargs.setdefault("initial", timezone.localdate)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            current = AvailabilityRule.objects.select_related("doctor").get(pk=obj.pk)
            saved = availability_rule_update(actor=request.user, rule=current, **_rule_changes(form))
        else:
            fields = {name: form.cleaned_data[name] for name in RULE_FIELDS}
            saved = availability_rule_create(actor=request.user, doctor=form.cleaned_data["doctor"], **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        availability_rule_delete(actor=request.user, rule=obj)


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(AvailabilityAdminBase):
    role_permissions = {Role.ADMIN: EXCEPTION_PERMISSIONS, Role.STAFF: EXCEPTION_PERMISSIONS}
    list_display = ("date", "doctor_name", "kind", "start_time", "end_time", "department", "reason")
    list_filter = ("kind", ("doctor", ScopedRelatedFilter))
    search_fields = (*AvailabilityAdminBase.search_fields, "reason")
    date_hierarchy = "date"
    ordering = ("-date", "start_time")
    fields = ("doctor", *EXCEPTION_FIELDS)

    def scope_queryset(self, qs, user):
        return scope_exceptions(qs, user)

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied  # unreachable: exceptions are added or removed, not edited
        fields = {name: form.cleaned_data[name] for name in EXCEPTION_FIELDS}
        saved = availability_exception_create(
            actor=request.user, doctor=form.cleaned_data["doctor"], **fields
        )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        availability_exception_delete(actor=request.user, exception=obj)
