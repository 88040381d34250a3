"""Organization, clinics, departments, users and the audit trail, in the admin clinic staff work in.

Permissions and scoping: see opd.core.admin_mixins. Every save calls an opd.core service (organization_*,
clinic_*, department_*, user_*, membership_*), which checks the rules and writes the audit event. IdempotencyRecord is deliberately not registered:
it is a transport-level replay cache of API responses (which can hold patient data) keyed per user;
nobody at a clinic has a use for it, and showing it would only widen who can read those bodies.
"""

from __future__ import annotations

import copy
import json
import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice

from .admin_mixins import (
    ADD,
    CHANGE,
    DELETE,
    VIEW,
    OpdModelAdmin,
    OpdModelAdminMixin,
    OpdTabularInline,
    ScopedRelatedFilter,
    adopt,
)
from .errors import DomainError
from .models import AuditEvent, Clinic, Department, Membership, Organization, OutboxEvent, Role, User
from .services import (
    clinic_create,
    clinic_update,
    department_create,
    department_update,
    membership_add,
    membership_remove,
    membership_set_nurse,
    organization_create,
    organization_update,
    second_factor_remove,
    user_change_role,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_password,
    user_signin_unlock,
    user_update,
)
from .services.organizations import CLINIC_FIELDS, DEPARTMENT_FIELDS, ORGANIZATION_FIELDS
from .services.users import SUPERUSER_FIELDS, USER_FIELDS
from .tenancy import clinics_for, departments_for, organizations_for, restrict_to_clinics

admin.site.site_header = "OPD administration"
admin.site.site_title = "OPD admin"
admin.site.index_title = "Clinic administration"


class LabelledAutocompleteJsonView(AutocompleteJsonView):
    """Autocomplete answers labelled by the searched model's admin when it says how
    (`autocomplete_label(obj)`), e.g. a patient with date of birth and MRN so that two people of one
    name can be told apart; otherwise str(obj), as Django does."""

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        label = getattr(self.model_admin, "autocomplete_label", None)
        if label is not None:
            result["text"] = label(obj)
        return result


def _autocomplete_view(request):
    return LabelledAutocompleteJsonView.as_view(admin_site=admin.site)(request)


# The site's URLs look the view up on the instance when they are built (after every admin loaded).
admin.site.autocomplete_view = _autocomplete_view  # type: ignore[method-assign]

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


@admin.register(Organization)
class OrganizationAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, CHANGE}}
    superuser_permissions = {VIEW, ADD, CHANGE}
    list_display = ("name", "slug", "require_second_factor", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("created_at",)
    ordering = ("name",)
    prepopulated_fields = {"slug": ("name",)}

    def scope_queryset(self, qs, user):
        return qs & organizations_for(user)

    def get_readonly_fields(self, request, obj=None):
        # The slug is the organization's identifier outside the admin; only a superuser renames it.
        if obj is not None and not request.user.is_superuser:
            return ("slug", "created_at")
        return self.readonly_fields

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    def save_model(self, request, obj, form, change):
        if change:
            saved = organization_update(
                actor=request.user, organization=obj, **self.changes(form, ORGANIZATION_FIELDS)
            )
        else:
            data = form.cleaned_data
            saved = organization_create(actor=request.user, name=data["name"], slug=data["slug"])
        adopt(obj, saved)


class ClinicForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=TIME_ZONE_CHOICES,
        initial="Europe/London",
        help_text="Slots are planned in this zone. A change re-plans the clinic's future slots; it is "
        "refused while booked future appointments would move with them.",
    )

    class Meta:
        model = Clinic
        fields = (
            "organization",
            "name",
            "code",
            "time_zone",
            "address",
            "phone",
            "phone_region",
            "email",
            "cancellation_cutoff_minutes",
            "is_active",
            "listed_publicly",
        )


@admin.register(Clinic)
class ClinicAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW}}
    form = ClinicForm
    list_display = ("name", "code", "time_zone", "cancellation_cutoff_minutes", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "code")
    list_select_related = ("organization",)
    ordering = ("organization__name", "name")
    readonly_fields = ("created_at",)
    fields = (*ClinicForm.Meta.fields, "created_at")

    def scope_queryset(self, qs, user):
        return qs & clinics_for(user)

    def save_model(self, request, obj, form, change):
        if change:
            saved = clinic_update(actor=request.user, clinic=obj, **self.changes(form, CLINIC_FIELDS))
        else:
            data = form.cleaned_data
            fields = {name: data[name] for name in CLINIC_FIELDS if name in data}
            saved = clinic_create(actor=request.user, organization=data["organization"], **fields)
        adopt(obj, saved)

    def get_list_display(self, request):
        if request.user.is_superuser:
            return ("name", "code", "organization", *self.list_display[2:])
        return self.list_display

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return (*self.list_filter, "organization")
        return self.list_filter


@admin.register(Department)
class DepartmentAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}, Role.STAFF: {VIEW}}
    list_display = ("name", "code", "clinic", "is_active")
    list_filter = ("is_active", ("clinic", ScopedRelatedFilter))
    search_fields = ("name", "code", "clinic__name")
    list_select_related = ("clinic",)
    str_select_related = ("clinic",)
    ordering = ("clinic__name", "name")
    # Slots and appointments hang off the department; it does not move to another clinic.
    locked_on_change = ("clinic",)

    def scope_queryset(self, qs, user):
        return qs & departments_for(user)

    def save_model(self, request, obj, form, change):
        if change:
            current = Department.objects.get(pk=obj.pk)
            saved = department_update(
                actor=request.user, department=current, **self.changes(form, DEPARTMENT_FIELDS)
            )
        else:
            data = form.cleaned_data
            fields = {name: data[name] for name in DEPARTMENT_FIELDS if name in data}
            saved = department_create(actor=request.user, clinic=data["clinic"], **fields)
        adopt(obj, saved)


class MembershipInline(OpdTabularInline):
    """Saved by UserAdmin.save_formset with membership_add / membership_remove."""

    model = Membership
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE, DELETE}}
    fields = ("clinic", "is_nurse", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    verbose_name = "clinic membership"
    verbose_name_plural = "Clinic memberships (where staff and doctors work)"

    def scope_queryset(self, qs, user):
        return restrict_to_clinics(qs.select_related("clinic"), user)


class OpdUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username",)


class OpdUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


class OpdAdminPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password page, saving through user_set_password. `actor` is set per request."""

    actor: User | None = None

    def save(self, commit=True):
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        self.user = user_set_password(actor=self.actor, user=self.user, password=password)
        return self.user


def _save_membership(request, row, user: User, *, delete: bool = False) -> Membership | None:
    if not delete and row.instance.pk is not None and row.changed_data == ["is_nurse"]:
        # Same clinic, the nurse capability granted or taken away: the membership itself stays.
        membership = Membership.objects.get(pk=row.instance.pk)
        return membership_set_nurse(
            actor=request.user, membership=membership, is_nurse=row.cleaned_data["is_nurse"]
        )
    if row.instance.pk is not None:  # removed, or moved to another clinic: the old membership ends
        membership_remove(actor=request.user, membership=Membership.objects.get(pk=row.instance.pk))
    if delete:
        return None
    return membership_add(
        actor=request.user,
        user=user,
        clinic=row.cleaned_data["clinic"],
        is_nurse=row.cleaned_data["is_nurse"],
    )


# django-otp's own admin would show every person's authenticator secret to whoever may view it, outside
# any organization's scope: devices are managed by their owner (/accounts/security/) and reset by an
# administrator with the "Reset second factor" action below.
admin.site.unregister(TOTPDevice)


@admin.register(User)
class UserAdmin(OpdModelAdminMixin, BaseUserAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD, CHANGE}}
    form = OpdUserChangeForm
    add_form = OpdUserCreationForm
    inlines = (MembershipInline,)
    list_display = ("username", "full_name", "email", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active")
    search_fields = ("username", "first_name", "last_name", "email")
    list_select_related = ("organization",)
    ordering = ("username",)
    date_hierarchy = "date_joined"
    readonly_fields = ("last_login", "date_joined")

    _access = ("organization", "role", "is_active", "is_staff")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": _access}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    superuser_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": (*_access, "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("organization", "role", "is_staff")}),
    )

    def scope_queryset(self, qs, user):
        # A superuser is nobody's to edit but a superuser's, even one attached to an organization.
        return qs.filter(organization_id=user.organization_id, is_superuser=False)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return self.superuser_fieldsets if request.user.is_superuser else self.fieldsets

    def get_list_display(self, request):
        if request.user.is_superuser:
            return (*self.list_display[:4], "organization", *self.list_display[4:])
        return self.list_display

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return (*self.list_filter, "is_superuser", "organization")
        return self.list_filter

    def get_search_results(self, request, queryset, search_term):
        qs, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Picking the account of a new doctor profile: offer doctors' accounts that have none yet.
        if request.GET.get("model_name") == "doctor" and request.GET.get("field_name") == "user":
            qs = qs.filter(role=Role.DOCTOR, doctor__isnull=True)
        return qs, may_have_duplicates

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    def save_model(self, request, obj, form, change):
        actor, data = request.user, form.cleaned_data
        if not change:
            saved = user_create(
                actor=actor,
                username=data["username"],
                password=data["password1"] if data.get("set_usable_password", True) else None,
                role=data["role"],
                organization=data.get("organization"),
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                is_staff=data.get("is_staff", False),
            )
            adopt(obj, saved)
            return
        changed = set(form.changed_data)
        saved = User.objects.get(pk=obj.pk)
        if "role" in changed:
            # Admin access goes with the role: both change together, so neither half is refused alone.
            is_staff = data["is_staff"] if "is_staff" in changed else None
            saved = user_change_role(actor=actor, user=saved, role=data["role"], is_staff=is_staff)
            changed.discard("is_staff")
        updates = {name: data[name] for name in changed if name in (*USER_FIELDS, *SUPERUSER_FIELDS)}
        if updates:
            saved = user_update(actor=actor, user=saved, **updates)
        if "is_active" in changed:
            toggle = user_reactivate if data["is_active"] else user_deactivate
            saved = toggle(actor=actor, user=saved)
        adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        # Only MembershipInline.
        self.save_rows_through(request, formset, _save_membership)

    actions = ("unlock_sign_in", "reset_second_factor")

    @admin.action(description="Unlock sign-in of the selected people (after too many failed attempts)")
    def unlock_sign_in(self, request, queryset):
        cleared = sum(user_signin_unlock(actor=request.user, user=user) for user in queryset)
        self.message_user(request, f"Sign-in unlocked ({cleared} recorded failure(s) cleared).")

    @admin.action(description="Reset the second factor of the selected people (a lost phone)")
    def reset_second_factor(self, request, queryset):
        reset, refused = 0, []
        for user in queryset:
            try:
                reset += bool(second_factor_remove(actor=request.user, user=user))
            except DomainError as exc:
                refused.append(f"{user}: {exc.message}")
        self.message_user(
            request,
            f"{reset} second factor(s) reset: those people set up an authenticator again at their next sign-in.",
        )
        for message in refused:
            self.message_user(request, message, level=messages.ERROR)

    def user_change_password(self, request, id, form_url=""):
        # The password form saves through user_set_password and needs the acting user. A copy of this
        # admin per request carries it: the registered instance is shared by every thread.
        per_request = copy.copy(self)
        per_request.change_password_form = type(
            "OpdAdminPasswordChangeForm", (OpdAdminPasswordChangeForm,), {"actor": request.user}
        )
        return BaseUserAdmin.user_change_password(per_request, request, id, form_url)


class ActionAreaFilter(admin.SimpleListFilter):
    """By the kind of change. Fixed choices: a DISTINCT over a large audit table would be slow."""

    title = "area"
    parameter_name = "area"

    def lookups(self, request, model_admin):
        return [
            ("patient.", "Patients"),
            ("appointment.", "Appointments"),
            ("availability.", "Availability"),
            ("doctor.", "Doctors"),
            ("user.", "Users"),
            ("membership.", "Memberships"),
            ("clinic.", "Clinics"),
            ("record.", "Record access"),
            ("queue.", "Queue views"),
            ("auth.", "Second factor"),
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(action__startswith=self.value())
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(OpdModelAdmin):
    """Read-only: the audit trail is written by services, never by hand."""

    role_permissions = {Role.ADMIN: {VIEW}}
    list_display = ("created_at", "action", "object_type", "object_id", "actor")
    list_filter = (ActionAreaFilter,)
    # Exact or prefix matches only, so the (object_type, object_id) and time indexes stay usable.
    search_fields = ("=object_id", "^action", "=actor__username")
    list_select_related = ("actor", "organization")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ("created_at", "organization", "actor", "action", "object_type", "object_id", "data_pretty")
    readonly_fields = fields

    def scope_queryset(self, qs, user):
        return qs.filter(organization_id=user.organization_id)

    def get_list_display(self, request):
        if request.user.is_superuser:
            return (*self.list_display, "organization")
        return self.list_display

    @admin.display(description="data")
    def data_pretty(self, obj: AuditEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True, default=str))


@admin.register(OutboxEvent)
class OutboxEventAdmin(OpdModelAdmin):
    """Read-only, superusers only: events of every organization, with queue entries that name patients.
    Where an operator reads why an event keeps failing (last_error) and whether the relay keeps up."""

    superuser_permissions = {VIEW}
    list_display = ("pk", "event", "created_at", "due_at", "attempts", "delivered_at")
    list_filter = ("event",)
    ordering = ("-pk",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ("event", "created_at", "due_at", "attempts", "delivered_at", "last_error", "payload")
    readonly_fields = fields


from . import admin_access  # noqa: E402, F401  # flagged accesses and their reviews (break the glass)
