"""Archived records in the admin: read-only; restoring is the `restore_archive` management command.

Administrators of the organization see the index (which rows were archived with which appointment) and
open the rows that are not clinical content (appointments, notifications, care notes, which they read
live too); a clinical row (consultation, addendum, prescription and its lines, result) is refused (403),
as the live notes are. Superusers open them, and each opening is logged (`record.viewed`, via admin)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils.html import format_html

from consultations.access import VIEWED
from opd.core.admin_mixins import VIEW, OpdModelAdmin
from opd.core.audit import record_access
from opd.core.models import Role

from .models import ArchivedRecord
from .selectors import archived_root_of, is_clinical, unsealed_data


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
    # The archived row as it was (encrypted fields decrypted for whoever may open it), not the sealed copy.
    fields = ("model", "object_pk", "root_model", "root_pk", "position", "archived_at", "content")
    readonly_fields = ("content",)

    @admin.display(description="archived row")
    def content(self, obj: ArchivedRecord) -> str:
        return format_html("<pre>{}</pre>", json.dumps(unsealed_data(obj.data), indent=2, ensure_ascii=False))

    def scope_queryset(self, qs, user):
        return qs.filter(organization_id=user.organization_id)

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is not None and is_clinical(obj) and not request.user.is_superuser:
            return False
        return super().has_view_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            record = self.get_object(request, unquote(object_id))
            if record is not None and is_clinical(record):
                root = archived_root_of(record)
                fields = root.data.get("fields", {}) if root is not None else {}
                record_access(
                    actor=request.user,
                    action=VIEWED,
                    obj=record,
                    organization_id=record.organization_id,
                    clinic_id=fields.get("clinic"),
                    patient_id=fields.get("patient"),
                    via="admin",
                    model=record.model,
                )
        return response
