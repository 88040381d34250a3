"""Archived records in the admin: read-only, for administrators of the organization; restoring is the
`restore_archive` management command."""

from __future__ import annotations

from django.contrib import admin

from opd.core.admin_mixins import VIEW, OpdModelAdmin
from opd.core.models import Role

from .models import ArchivedRecord


@admin.register(ArchivedRecord)
class ArchivedRecordAdmin(OpdModelAdmin):
    role_permissions = {Role.ADMIN: {VIEW}}
    list_display = ("model", "object_pk", "root_model", "root_pk", "archived_at")
    list_filter = ("model", "root_model")
    search_fields = ("=root_pk", "=object_pk")
    search_help_text = "Exact id of the archived row or of its root (an appointment id)."
    date_hierarchy = "archived_at"
    ordering = ("-archived_at", "root_model", "root_pk", "position")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def scope_queryset(self, qs, user):
        return qs.filter(organization_id=user.organization_id)
