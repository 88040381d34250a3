"""Flagged accesses (break the glass) in the admin: the organization's administrators review the access
rows, never the records (admins do not read clinical notes). A review is its own row (AccessReview):
the access row itself is append-only.

    model           superuser      role admin (organization)    role staff
    FlaggedAccess   view review    view review                  -
    AccessReview    view add       view add                     -
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from .admin_mixins import ADD, VIEW, OpdModelAdmin, adopt
from .clinic_time import in_clinic_time
from .errors import DomainError
from .models import AccessReview, FlaggedAccess, Role
from .selectors import BREAK_GLASS, flagged_accesses_for
from .services.access import access_review_create


class ReviewedFilter(admin.SimpleListFilter):
    title = "reviewed"
    parameter_name = "reviewed"

    def lookups(self, request, model_admin):
        return [("no", "Not yet"), ("yes", "Reviewed")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(review__isnull=self.value() == "no")
        return queryset


@admin.register(FlaggedAccess)
class FlaggedAccessAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, "review"}}
    list_display = ("created_at", "actor", "actor_role", "patient_id", "clinic", "reason", "review_status")
    list_filter = (ReviewedFilter,)
    search_fields = ("=patient_id", "=actor__username")
    search_help_text = "Exact patient id or the clinician's username."
    list_select_related = ("actor", "clinic", "review__reviewer")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "created_at",
        "actor",
        "actor_role",
        "patient_id",
        "clinic",
        "reason",
        "source_ip",
        "user_agent",
        "review_status",
    )
    readonly_fields = fields
    actions = ("mark_reviewed",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(action=BREAK_GLASS)

    def scope_queryset(self, qs, user):
        # The rows of flagged_accesses_for(user), through the proxy's own manager.
        return qs.filter(pk__in=flagged_accesses_for(user).values("pk"))

    def has_review_permission(self, request) -> bool:
        return self.allowed(request, "review")

    @admin.display(description="review")
    def review_status(self, obj: FlaggedAccess) -> str:
        review = getattr(obj, "review", None)
        if review is not None:
            # On the clock of the clinic whose record was opened (an access with no clinic: UTC, named).
            return format_html(
                "Reviewed by {} on {}{}",
                review.reviewer,
                in_clinic_time(review.reviewed_at, obj.clinic if obj.clinic_id else "UTC"),
                f": {review.note}" if review.note else "",
            )
        url = reverse("admin:core_accessreview_add") + f"?event={obj.pk}"
        return format_html('<a href="{}">Review</a>', url)

    @admin.action(description="Mark the selected accesses reviewed (no note)", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        done = 0
        for event in queryset.filter(review__isnull=True):
            try:
                access_review_create(actor=request.user, event=event)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"{done} access(es) marked reviewed.", messages.SUCCESS)


@admin.register(AccessReview)
class AccessReviewAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW, ADD}}
    list_display = ("reviewed_at", "reviewer", "event", "note")
    list_select_related = ("reviewer", "event")
    ordering = ("-reviewed_at",)
    fields = ("event", "note")
    show_full_result_count = False

    def scope_queryset(self, qs, user):
        return qs.filter(event__in=flagged_accesses_for(user))

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("event", "note", "reviewer", "reviewed_at")

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else ("event", "note", "reviewer", "reviewed_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "event":
            # Only this organization's flagged accesses still waiting for a review.
            kwargs["queryset"] = flagged_accesses_for(request.user).filter(review__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return  # unreachable: no change permission
        saved = access_review_create(
            actor=request.user, event=form.cleaned_data["event"], note=form.cleaned_data.get("note", "")
        )
        adopt(obj, saved)
