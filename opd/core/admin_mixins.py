"""What every ModelAdmin of the project shares: role permissions, tenant scoping, service errors on forms.

Permissions. Django's model permissions and Groups are not used: each ModelAdmin states, per role, which
of view / add / change / delete (and custom action permissions such as "cancel" or "approve") it grants,
in `role_permissions`; a superuser gets `superuser_permissions` (by default whatever any role gets).
Only active users with is_staff whose role is admin or staff (and who belong to an organization), or
superusers, get anything; doctors and patients get nothing even if is_staff were set by mistake.

    model                    superuser            role admin (organization)    role staff (their clinics)
    Organization             view add change      view change (own)            -
    Clinic, Department       view add change      view add change              view
    User (+ Membership)      view add change      view add change              -
    AuditEvent               view                 view                         -
    Patient                  view add change      view add change              view add change (org MPI)
    Doctor                   view add change      view add change approve      view, edit availability
    AvailabilityRule         view add change del  view add change delete       view add change delete
    AvailabilityException    view add delete      view add delete              view add delete
    Slot                     view                 view                         view
    Appointment              view add cancel      view add cancel              view add cancel

Nothing is hard-deleted from the admin (deactivate instead) except availability, which services remove.

Scoping. `get_queryset` is the tenant boundary: a row outside it is 404 on its change URL. Foreign-key
choices, autocomplete results and related list filters reuse the *related* model's admin queryset, so a
user can only ever pick or see what they could open in that model's own list.

Writes. Every write goes through a service; nothing falls back on Django's default save. An admin that
grants add or change implements `save_model` (and `save_formset` for editable inlines, `delete_model`
for delete) by calling services; the defaults here refuse, and tests/core/test_write_doors.py checks
every registered admin. Many-to-many values are the service's to write: `save_related` never calls
`form.save_m2m()`.

Service errors. Writes go through services that raise `DomainError`. When one is raised while saving,
the view's transaction is rolled back and the same POST is shown again with the service's message at the
top and its field messages beside the fields (or beside the inline row that failed) instead of a 500.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Model, Prefetch, QuerySet
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from .clinic_time import in_clinic_time as in_clinic_time  # re-exported: the admins import it from here
from .clinic_time import parse_local_day
from .errors import DomainError
from .models import Role

M = TypeVar("M", bound=Model)

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
ADMIN_ROLES = frozenset({Role.ADMIN, Role.STAFF})


def may_use_admin(user) -> bool:
    """Signed in, active, flagged is_staff, and a superuser or an admin/staff member of an organization."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return user.role in ADMIN_ROLES and user.organization_id is not None


def adopt(target: Model, saved: Model) -> None:
    """Turn the admin's unsaved form instance into the row a service saved.

    The admin logs, messages and redirects using the instance it built from the form; the service made
    its own. Copying the column values over makes them the same row.
    """
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def attach_domain_error(
    form, error: DomainError, field_map: dict[str, str] | None = None, *, with_message: bool = True
) -> None:
    """Put a service's error on a form: each field message beside its field, the summary on top."""
    shown: set[str] = set()
    for key, field_messages in error.fields.items():
        name = (field_map or {}).get(key, key)
        for message in field_messages:
            shown.add(f"{key}: {message}")
            if name in form.fields:
                form.add_error(name, message)
            elif key == "non_field_errors":
                form.add_error(None, message)
            else:
                form.add_error(None, f"{key.replace('_', ' ').capitalize()}: {message}")
    # validate_model() summarises as "<field>: <first message>"; no need to say it twice.
    if (with_message or not error.fields) and error.message not in shown:
        form.add_error(None, error.message)


class ServiceRejected(Exception):
    """A service refused a write; `prefix` names the inline form that asked for it (None: the main form)."""

    def __init__(self, error: DomainError, prefix: str | None = None):
        super().__init__(error.message)
        self.error = error
        self.prefix = prefix


def _form_showing(form_class, error: DomainError, field_map: dict[str, str]):
    class ServiceErrorForm(form_class):
        def clean(self):
            cleaned = super().clean()
            attach_domain_error(self, error, field_map)
            return cleaned

    ServiceErrorForm.__name__ = form_class.__name__
    return ServiceErrorForm


def _formset_showing(formset_class, rejected: ServiceRejected, field_map: dict[str, str]):
    class ServiceErrorFormSet(formset_class):
        def clean(self):
            super().clean()
            for form in self.forms:
                if form.prefix != rejected.prefix:
                    continue
                if self.can_delete and self._should_delete_form(form):
                    # A deleted row's own errors are not shown; say it for the whole inline.
                    raise ValidationError(rejected.error.message)
                attach_domain_error(form, rejected.error, field_map, with_message=False)

    ServiceErrorFormSet.__name__ = formset_class.__name__
    return ServiceErrorFormSet


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-field list filter that offers only rows the user may see, never another tenant's names."""

    def field_choices(self, field, request, model_admin):
        qs = model_admin.related_queryset(request, field.remote_field.model)
        if qs is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs]


class _ChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        # ChangeList skips list_select_related when the admin's queryset already selects related rows
        # (str_select_related); select_related() adds up, so apply it regardless.
        if self.list_select_related and self.list_select_related is not True:
            qs = qs.select_related(*self.list_select_related)
        prefetch = getattr(self.model_admin, "list_prefetch_related", ())
        return qs.prefetch_related(*prefetch) if prefetch else qs


class LocalDaySearchMixin:
    """A search box that also finds rows by the clinic-local day typed into it ("06 Dec", "2026-12-06",
    "06/12/2026": opd.core.clinic_time.parse_local_day), through a stored clinic-local date field, so no
    time-zone arithmetic runs in the database."""

    local_day_field: str = ""

    def get_search_results(self, request, queryset, search_term):
        day = parse_local_day(search_term, timezone.localdate())
        if self.local_day_field and day is not None:
            return queryset.filter(**{self.local_day_field: day}), False
        return super().get_search_results(request, queryset, search_term)


class RoleScopedMixin:
    """Permissions by role and tenant scoping, for ModelAdmins and inlines alike."""

    admin_site: AdminSite  # set by the ModelAdmin or inline this is mixed into
    role_permissions: dict[str, Iterable[str]] = {}
    superuser_permissions: Iterable[str] | None = None
    # What __str__ reads: this queryset also feeds other admins' choices, list filters and autocomplete,
    # which print every row.
    str_select_related: tuple[str, ...] = ()

    def allowed(self, request, action: str) -> bool:
        user = request.user
        if not may_use_admin(user):
            return False
        if user.is_superuser:
            granted = self.superuser_permissions
            if granted is None:
                granted = {perm for perms in self.role_permissions.values() for perm in perms}
            return action in granted
        return action in self.role_permissions.get(user.role, ())

    def has_module_permission(self, request) -> bool:
        return any(self.allowed(request, action) for action in (VIEW, ADD, CHANGE))

    def has_view_permission(self, request, obj=None) -> bool:
        return self.allowed(request, VIEW) or self.allowed(request, CHANGE)

    def has_add_permission(self, request, obj=None) -> bool:
        return self.allowed(request, ADD)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.allowed(request, CHANGE)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.allowed(request, DELETE)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self.str_select_related:
            qs = qs.select_related(*self.str_select_related)
        user = request.user
        if not may_use_admin(user):
            return qs.none()
        if user.is_superuser:
            return qs
        return self.scope_queryset(qs, user)

    def scope_queryset(self, qs: QuerySet, user) -> QuerySet:
        """The rows a non-superuser admin or staff member may see. Every admin must say: no default."""
        raise NotImplementedError(f"{type(self).__name__} must scope its queryset to the user's tenant")

    def related_queryset(self, request, model) -> QuerySet | None:
        """What the user may pick of `model`: what its admin would list. Unregistered: nothing (None for
        superusers, meaning Django's default)."""
        try:
            related_admin = self.admin_site.get_model_admin(model)
        except NotRegistered:
            return None if request.user.is_superuser else model._default_manager.none()
        return related_admin.get_queryset(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            qs = self.related_queryset(request, db_field.remote_field.model)
            if qs is not None:
                kwargs["queryset"] = qs
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            qs = self.related_queryset(request, db_field.remote_field.model)
            if qs is not None:
                kwargs["queryset"] = qs
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class OpdModelAdminMixin(RoleScopedMixin):
    """ModelAdmin behaviour on top of the scoping: organization defaults, service errors on forms."""

    # Fields that are set once: shown disabled on change. Disabled (not read-only) keeps them on the form,
    # so the model's unique constraints that include them are still checked before saving.
    locked_on_change: tuple[str, ...] = ("organization",)
    # A service's field name -> this form's field name, where they differ.
    service_error_fields: dict[str, str] = {}
    list_prefetch_related: tuple[str | Prefetch, ...] = ()

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Django would redirect to the index saying the row "doesn't exist". Another tenant's row
            # gets the same answer as one that never existed, and that answer is a 404. This covers the
            # change, delete and history pages and the user password page.
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def get_form(self, request, obj=None, change=False, **kwargs):
        rejected = getattr(request, "_opd_rejected", None)
        if rejected is not None:
            # An inline row's error is shown beside that row; the main form only carries the summary
            # (which also keeps the whole page unsaved). Wrapped first: a subclass of a ModelForm
            # rebuilds its fields from the model, which would undo the changes below.
            error = rejected.error if rejected.prefix is None else DomainError(rejected.error.message)
            kwargs["form"] = _form_showing(kwargs.get("form", self.form), error, self.service_error_fields)
        form = super().get_form(request, obj, change=change, **kwargs)
        fields = form.base_fields
        if "organization" in fields and not request.user.is_superuser:
            # Everyone but a superuser works inside their own organization; the value is not taken from
            # the POST (disabled), and the field's queryset holds that one organization anyway.
            field = fields["organization"] = copy.deepcopy(fields["organization"])
            field.initial = request.user.organization_id
            field.disabled = True
        if obj is not None:
            for name in self.locked_on_change:
                if name in fields:
                    # A copy: fields declared on a form class are shared by every class built from it.
                    fields[name] = copy.deepcopy(fields[name])
                    fields[name].disabled = True
        return form

    def get_formsets_with_inlines(self, request, obj=None):
        rejected = getattr(request, "_opd_rejected", None)
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            if rejected is not None and rejected.prefix is not None:
                formset = _formset_showing(formset, rejected, getattr(inline, "service_error_fields", {}))
            yield formset, inline

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ServiceRejected) as exc:
            if request.method != "POST" or hasattr(request, "_opd_rejected"):
                raise
            # The failed attempt was rolled back with the view's transaction. Run the same POST again:
            # this time the forms carry the service's error, so nothing is saved and the page shows why.
            request._opd_rejected = exc if isinstance(exc, ServiceRejected) else ServiceRejected(exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def get_changelist(self, request, **kwargs):
        return _ChangeList

    # No default writes: see "Writes" above.

    def save_model(self, request, obj, form, change):
        raise ImproperlyConfigured(
            f"{type(self).__name__} must save {self.opts.verbose_name} through a service"
        )

    def delete_model(self, request, obj):
        raise ImproperlyConfigured(
            f"{type(self).__name__} must delete {self.opts.verbose_name} through a service"
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        # A read-only inline's formset is saved too, with nothing in it to write.
        if formset.has_changed():
            raise ImproperlyConfigured(
                f"{type(self).__name__} must save its {formset.model._meta.verbose_name} rows through a service"
            )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @staticmethod
    def save_rows_through(request, formset, save_row) -> None:
        """Save an inline's rows one by one through `save_row(request, row, parent, delete=...)`, which
        calls a service and returns the saved row. A refusal shows beside the row's fields; what
        formset.save() would have recorded is recorded, for the admin's change message and history."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        deleted = formset.deleted_forms
        for row in formset.forms:
            is_deleted, is_new = row in deleted, row.instance.pk is None
            if (is_deleted and is_new) or (not is_deleted and not row.has_changed()):
                continue  # an empty extra row, or one left as it was
            try:
                saved = save_row(request, row, formset.instance, delete=is_deleted)
            except DomainError as exc:
                raise ServiceRejected(exc, prefix=row.prefix) from exc
            if is_deleted:
                formset.deleted_objects.append(row.instance)
            elif is_new:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, row.changed_data))

    @staticmethod
    def changes(form, names) -> dict:
        """The form's values that the user changed, among `names`: what an update service takes."""
        return {name: form.cleaned_data[name] for name in form.changed_data if name in names}


class OpdModelAdmin(OpdModelAdminMixin, admin.ModelAdmin):
    pass


class OpdTabularInline(RoleScopedMixin, admin.TabularInline):
    pass


def report_bulk(
    modeladmin,
    request,
    *,
    done: int,
    done_message: str,
    failures: Sequence[tuple[object, str]],
    failed_intro: str,
) -> None:
    """Tell the user how a bulk action went: how many succeeded, and each failure with the reason."""
    if done:
        modeladmin.message_user(request, done_message, messages.SUCCESS)
    if failures:
        details = "; ".join(f"{label}: {reason}" for label, reason in failures)
        modeladmin.message_user(request, f"{failed_intro} {details}", messages.ERROR)
    if not done and not failures:
        modeladmin.message_user(request, "Nothing needed changing.", messages.INFO)


def bulk_change(
    modeladmin,
    request,
    queryset: QuerySet[M],
    *,
    noun: str,
    verb: str,
    already: Callable[[M], bool],
    change: Callable[[M], object],
) -> None:
    """A bulk action that calls a service for each selected row: rows already in the wanted state are
    counted, not changed; a refusal (DomainError) is reported with its reason and the rest go on."""
    done, unchanged, failures = 0, 0, []
    for obj in queryset:
        if already(obj):
            unchanged += 1
            continue
        try:
            change(obj)
            done += 1
        except DomainError as exc:
            failures.append((str(obj), exc.message))
    message = f"{verb.capitalize()} {done} {noun}{'' if done == 1 else 's'}."
    if unchanged:
        message += f" {unchanged} already {verb}."
    report_bulk(
        modeladmin,
        request,
        done=done or unchanged,
        done_message=message,
        failures=failures,
        failed_intro=f"Could not change {len(failures)}:",
    )
