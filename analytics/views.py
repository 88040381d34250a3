"""The analytics page (charts, tables, CSV export of every table) and report downloads.

Who may see them: admins, staff and doctors (doctors: their own figures), superusers; patients are
refused (403). Scope and filters go through the same selectors as the API.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from opd.core.admin_mixins import attach_domain_error
from opd.core.db_router import replica_view
from opd.core.errors import DomainError, PermissionDenied
from opd.core.models import Role
from opd.core.tenancy import clinic_ids_for

from . import selectors
from .exports import rows_to_csv
from .forms import StatsFilterForm
from .models import ReportRun

TABLES = {
    "daily": ("Appointments per day", selectors.DAILY_COLUMNS, selectors.daily_statistics),
    "news2": ("NEWS2 bands seen per day", selectors.NEWS2_COLUMNS, selectors.news2_daily),
    "care-notes": (
        "Care notes per category per day",
        selectors.CARE_NOTE_COLUMNS,
        selectors.care_notes_daily,
    ),
    "revenue": ("Revenue per day", selectors.REVENUE_COLUMNS, selectors.revenue_per_day),
}
# Money is the desk's: doctors see the clinical tables, not revenue.
MONEY_TABLES = {"revenue"}


def _check_role(user) -> None:
    if not (user.is_superuser or user.role in (Role.ADMIN, Role.STAFF, Role.DOCTOR)):
        raise DjangoPermissionDenied("Statistics are for clinic staff.")


def _sees_money(user) -> bool:
    return user.is_superuser or user.role in (Role.ADMIN, Role.STAFF)


def _filtered(request):
    """(form, scope, date_from, date_to); scope is None when the form has errors (shown beside fields)."""
    form = StatsFilterForm(request.GET or None, user=request.user)
    if request.GET and not form.is_valid():
        return form, None, None, None
    filters = form.filters() if request.GET else {}
    try:
        scope = selectors.resolve_scope(request.user, **filters)
        date_from, date_to = selectors.validate_range(
            form.cleaned_data.get("date_from") if request.GET else None,
            form.cleaned_data.get("date_to") if request.GET else None,
        )
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    except DomainError as exc:
        attach_domain_error(form, exc)
        return form, None, None, None
    return form, scope, date_from, date_to


@login_required
@require_GET
@replica_view
def dashboard(request):
    _check_role(request.user)
    form, scope, date_from, date_to = _filtered(request)
    context = {"form": form, "tables": []}
    if scope is not None:
        # The range applied (the default when none was asked for) goes back into the date fields, so the
        # form says what the figures cover and the next "Show" keeps it.
        data = form.data.copy() if form.is_bound else QueryDict(mutable=True)
        for name, value in (("date_from", date_from), ("date_to", date_to)):
            if not data.get(name):
                data[name] = value.isoformat()
        form.data, form.is_bound = data, True
        context["range_is_default"] = not (request.GET.get("date_from") or request.GET.get("date_to"))
        daily = selectors.daily_statistics(scope, date_from, date_to)
        summary = selectors.summarize(daily)
        news2 = selectors.news2_daily(scope, date_from, date_to)
        care_notes = selectors.care_notes_daily(scope, date_from, date_to)
        query = request.GET.urlencode()
        shown = [("daily", daily), ("news2", news2), ("care-notes", care_notes)]
        if _sees_money(request.user):
            shown.append(("revenue", selectors.revenue_per_day(scope, date_from, date_to)))
        for key, rows in shown:
            title, columns, _ = TABLES[key]
            context["tables"].append(
                {
                    "key": key,
                    "title": title,
                    "headers": [c.replace("_", " ") for c in columns],
                    "rows": [[row.get(c) for c in columns] for row in rows],
                    "csv_query": query,
                }
            )
        context.update(
            date_from=date_from,
            date_to=date_to,
            summary=summary,
            clinic_count=len(scope.clinics),
            chart_data={"daily": daily, "news2": news2, "care_notes": care_notes},
        )
    return render(request, "analytics/dashboard.html", context)


@login_required
@require_GET
def export_csv(request, table: str):
    if table not in TABLES:
        raise Http404("No such table.")
    _check_role(request.user)
    if table in MONEY_TABLES and not _sees_money(request.user):
        raise DjangoPermissionDenied("Revenue is for administrators and staff.")
    form, scope, date_from, date_to = _filtered(request)
    if scope is None:
        errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
        return HttpResponse(
            rows_to_csv(["field", "error"], [{"field": k, "error": v[0]} for k, v in errors.items()]),
            status=400,
            content_type="text/csv; charset=utf-8",
        )
    _title, columns, rows_for = TABLES[table]
    rows = rows_for(scope, date_from, date_to)
    response = HttpResponse(rows_to_csv(columns, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table}-{date_from}-{date_to}.csv"'
    return response


@login_required
@require_GET
def report_download(request, pk: int):
    """A report run's file, for whoever may see every clinic it covers (another tenant's: 404)."""
    user = request.user
    run = ReportRun.objects.filter(pk=pk).exclude(file="").first()
    if run is None:
        raise Http404("No such report.")
    if not user.is_superuser:
        if user.organization_id != run.organization_id or user.role not in (Role.ADMIN, Role.STAFF):
            raise Http404("No such report.")
        visible = set(clinic_ids_for(user))  # type: ignore[arg-type]  # None only for superusers, skipped above
        if not set(run.clinic_ids) <= visible:
            raise Http404("No such report.")
    name = run.file.name.rsplit("/", 1)[-1]  # type: ignore[union-attr]  # runs without a file are excluded above
    content_type = run.content_type or "application/octet-stream"
    return FileResponse(run.file.open("rb"), as_attachment=True, filename=name, content_type=content_type)
