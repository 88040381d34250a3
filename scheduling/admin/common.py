"""What the scheduling admin pages share: list filters and clinic-local times."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils import timezone

from opd.core.admin_mixins import in_clinic_time
from opd.core.clinic_time import zone_label


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class WhenFilter(admin.SimpleListFilter):
    """Upcoming by default: the rows people work with, and no sorting through years of history.
    Drilling into the date hierarchy shows every row of that period."""

    title = "when"
    parameter_name = "when"

    def __init__(self, request, params, model, model_admin):
        hierarchy = model_admin.date_hierarchy
        self.drilling = bool(hierarchy) and any(key.startswith(f"{hierarchy}__") for key in params)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [("upcoming", "Upcoming"), ("past", "Past"), ("all", "All")]

    def value(self):
        return super().value() or ("all" if self.drilling else "upcoming")

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "upcoming":
            return queryset.filter(end__gt=now)
        if self.value() == "past":
            return queryset.filter(end__lte=now)
        return queryset


class ClinicTimeMixin:
    """Times on the clinic's clock with the zone named: the list columns below, and the change page,
    whose stored moments (created, booked, checked in...) Django shows in the current time zone."""

    def clinic_time_change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {}), "clinic_zone": zone_label(obj.clinic)}
        # Rendered inside the override: a TemplateResponse renders lazily, after the view returns.
        with timezone.override(obj.clinic.tz):
            response = super().change_view(request, object_id, form_url, context)
            if hasattr(response, "render"):
                response.render()
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.clinic_time_change_view(request, object_id, form_url, extra_context)

    @admin.display(description="starts (clinic time)", ordering="start")
    def start_local(self, obj) -> str:
        return in_clinic_time(obj.start, obj.clinic.time_zone)

    @admin.display(description="ends")
    def end_local(self, obj) -> str:
        return in_clinic_time(obj.end, obj.clinic.time_zone, with_day=False)
