"""Every write of the analytics app: report definitions (and their beat schedule), report runs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
import uuid
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from opd.core import events
from opd.core.audit import audit
from opd.core.errors import NotFound, ValidationFailed
from opd.core.links import absolute_url
from opd.core.models import Clinic, Department, Organization, User
from opd.core.services import validate_model
from scheduling.models import Doctor

from . import selectors
from .exports import rows_to_csv
from .models import ReportDefinition, ReportFormat, ReportKind, ReportRun, RunStatus

logger = logging.getLogger(__name__)

TASK_NAME = "analytics.build_report"
# Published (on commit) when someone asks for a report now; analytics.subscribers queues its build.
REPORT_REQUESTED = "analytics.report_requested"
EDITABLE_FIELDS = (
    "name",
    "kind",
    "format",
    "filters",
    "recipients",
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "month_of_year",
    "time_zone",
    "is_active",
)
FILTER_KEYS = {"days", "clinics", "department", "doctor"}
MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 7
# A run left "running" longer than this (a worker lost mid-build) may be claimed again.
STALE_RUN = dt.timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 600) + 60)


def _id_list(value: Any, field: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValidationFailed(
            "Clinics must be a list of ids.", fields={"filters": f"{field}: a list of ids."}
        )
    return value


def _one_id(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed(f"{field} must be an id.", fields={"filters": f"{field}: an id."})
    return value


def clean_filters(organization_id: int, filters: Any) -> dict[str, Any]:
    """The definition's filters checked against its organization: ids elsewhere are unknown (404)."""
    if filters in (None, ""):
        filters = {}
    if not isinstance(filters, dict):
        raise ValidationFailed("Filters must be an object.", fields={"filters": "Use a JSON object."})
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise ValidationFailed(
            f"Unknown filters: {', '.join(sorted(unknown))}.",
            fields={"filters": f"Allowed: {', '.join(sorted(FILTER_KEYS))}."},
        )
    out: dict[str, Any] = {}
    if "days" in filters:
        days = filters["days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_REPORT_DAYS:
            raise ValidationFailed(
                f"days must be 1 to {MAX_REPORT_DAYS}.", fields={"filters": f"days: 1 to {MAX_REPORT_DAYS}."}
            )
        out["days"] = days
    if filters.get("clinics"):
        ids = sorted(set(_id_list(filters["clinics"], "clinics")))
        if Clinic.objects.filter(organization_id=organization_id, pk__in=ids).count() != len(ids):
            raise NotFound("Unknown clinic.", fields={"filters": "clinics: unknown clinic."})
        out["clinics"] = ids
    if filters.get("department") is not None:
        department = _one_id(filters["department"], "department")
        if not Department.objects.filter(pk=department, clinic__organization_id=organization_id).exists():
            raise NotFound("Unknown department.", fields={"filters": "department: unknown department."})
        out["department"] = department
    if filters.get("doctor") is not None:
        doctor = _one_id(filters["doctor"], "doctor")
        if not Doctor.objects.filter(pk=doctor, organization_id=organization_id).exists():
            raise NotFound("Unknown doctor.", fields={"filters": "doctor: unknown doctor."})
        out["doctor"] = doctor
    return out


def _sync_periodic_task(definition: ReportDefinition) -> None:
    """Mirror the definition's schedule into beat's tables (one PeriodicTask per definition)."""
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=definition.minute,
        hour=definition.hour,
        day_of_week=definition.day_of_week,
        day_of_month=definition.day_of_month,
        month_of_year=definition.month_of_year,
        timezone=definition.time_zone,
    )
    values = {
        "name": f"analytics report #{definition.pk}: {definition.name}"[:200],
        "task": TASK_NAME,
        "crontab": crontab,
        "interval": None,
        "kwargs": json.dumps({"definition_id": definition.pk}),
        "enabled": definition.is_active,
        "description": f"Scheduled report of organization {definition.organization_id}",
    }
    task = definition.periodic_task
    if task is None:
        task = PeriodicTask.objects.create(**values)
        definition.periodic_task = task
        definition.save(update_fields=["periodic_task"])
    else:
        for name, value in values.items():
            setattr(task, name, value)
        task.save()  # PeriodicTask.save tells the running beat that the schedule changed


@transaction.atomic
def report_definition_save(
    *,
    actor: User | None,
    organization: Organization,
    definition: ReportDefinition | None = None,
    **fields: Any,
) -> ReportDefinition:
    """Create or change a definition and its beat schedule, in one transaction."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(unknown, "Unknown field."))
    creating = definition is None
    if definition is None:
        definition = ReportDefinition(
            organization=organization, created_by=actor if actor and actor.pk else None
        )
    elif definition.organization_id != organization.pk:
        raise NotFound("No such report.")
    for name, value in fields.items():
        setattr(definition, name, value)
    definition.filters = clean_filters(organization.pk, definition.filters)
    definition.recipients = "\n".join(definition.recipient_list)
    validate_model(definition, exclude=["periodic_task", "created_by"])
    definition.save()
    _sync_periodic_task(definition)
    audit(
        actor=actor,
        action="report.created" if creating else "report.changed",
        obj=definition,
        organization_id=organization.pk,
        fields=sorted(fields),
    )
    return definition


@transaction.atomic
def report_definition_delete(*, actor: User | None, definition: ReportDefinition) -> None:
    """Delete a definition with its schedule and its runs' files."""
    task = definition.periodic_task
    for run in definition.runs.exclude(file=""):
        run.file.delete(save=False)
    audit(actor=actor, action="report.deleted", obj=definition, organization_id=definition.organization_id)
    definition.delete()
    if task is not None:
        task.delete()


def report_run_claim(*, definition_id: int, task_id: str | None) -> ReportRun | None:
    """The run this task delivery builds, marked running; None when there is nothing to do (the
    definition is gone, or this delivery's run already succeeded or is being built by another worker).

    Claimed with a conditional UPDATE, so a duplicate delivery of the same message builds nothing twice.
    """
    definition = ReportDefinition.objects.filter(pk=definition_id).first()
    if definition is None:
        return None
    run = None
    if task_id:
        run, _ = ReportRun.objects.get_or_create(
            task_id=task_id,
            defaults={"definition": definition, "organization_id": definition.organization_id},
        )
    else:
        run = ReportRun.objects.create(definition=definition, organization_id=definition.organization_id)
    now = timezone.now()
    claimable = Q(status__in=[RunStatus.PENDING, RunStatus.RETRYING]) | Q(
        status=RunStatus.RUNNING, started_at__lt=now - STALE_RUN
    )
    claimed = ReportRun.objects.filter(claimable, pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=F("attempts") + 1, started_at=now
    )
    if not claimed:
        return None
    run.refresh_from_db()
    return run


def report_period(definition: ReportDefinition, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The days a report covers: `days` (default 7) up to yesterday in the definition's time zone."""
    today = today or timezone.localdate(timezone=definition_tz(definition))
    days = definition.filters.get("days", DEFAULT_REPORT_DAYS)
    end = today - dt.timedelta(days=1)
    return end - dt.timedelta(days=days - 1), end


def definition_tz(definition: ReportDefinition) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(definition.time_zone)


def report_table(
    definition: ReportDefinition, date_from: dt.date, date_to: dt.date
) -> tuple[selectors.StatsScope, list[str], list[dict[str, Any]]]:
    """(scope, columns, rows) of the report: the same figures as the API, for the definition's scope."""
    filters = definition.filters
    scope = selectors.scope_for_organization(
        definition.organization_id,
        clinic_ids=filters.get("clinics"),
        department_id=filters.get("department"),
        doctor_id=filters.get("doctor"),
    )
    if definition.kind == ReportKind.NEWS2:
        return scope, selectors.NEWS2_COLUMNS, selectors.news2_daily(scope, date_from, date_to)
    if definition.kind == ReportKind.CARE_NOTES:
        return scope, selectors.CARE_NOTE_COLUMNS, selectors.care_notes_daily(scope, date_from, date_to)
    rows = selectors.daily_statistics(scope, date_from, date_to)
    return scope, selectors.DAILY_COLUMNS, [*rows, {**selectors.summarize(rows), "date": "total"}]


def render_report(
    definition: ReportDefinition,
    columns: list[str],
    rows: list[dict[str, Any]],
    period: tuple[dt.date, dt.date],
) -> tuple[bytes, str, str]:
    """(content, content type, file extension)."""
    if definition.format == ReportFormat.HTML:
        html = render_to_string(
            "analytics/report.html",
            {
                "definition": definition,
                "columns": columns,
                "rows": [[row.get(c) for c in columns] for row in rows],
                "period": period,
                "generated_at": timezone.now(),
            },
        )
        return html.encode(), "text/html; charset=utf-8", "html"
    return rows_to_csv(columns, rows).encode(), "text/csv; charset=utf-8", "csv"


def download_url(run: ReportRun) -> str:
    # On the configured site address: the worker building the report knows no request or host.
    return absolute_url(reverse("analytics:report-download", args=[run.pk]))


def report_run_build(*, run: ReportRun) -> ReportRun:
    """Build the report file, store it, e-mail it with a download link, and record the run as succeeded.

    The caller has claimed the run (report_run_claim). Raises whatever went wrong; the task records it.
    """
    definition = run.definition
    date_from, date_to = report_period(definition)
    scope, columns, rows = report_table(definition, date_from, date_to)
    content, content_type, extension = render_report(definition, columns, rows, (date_from, date_to))
    name = f"{definition.kind}-{definition.pk}-{date_from:%Y%m%d}-{date_to:%Y%m%d}-run{run.pk}.{extension}"
    if run.file:
        run.file.delete(save=False)  # a retry replaces what a failed attempt may have left
    run.file.save(name, ContentFile(content), save=False)
    run.content_type = content_type
    run.period_start, run.period_end = date_from, date_to
    run.clinic_ids = scope.clinic_ids
    run.rows = len(rows)
    run.recipients = "\n".join(definition.recipient_list)
    run.save(
        update_fields=[
            "file",
            "content_type",
            "period_start",
            "period_end",
            "clinic_ids",
            "rows",
            "recipients",
        ]
    )

    subject = f"{definition.name}: {date_from:%d %b %Y} to {date_to:%d %b %Y}"
    body = render_to_string(
        "analytics/report_email.txt",
        {"definition": definition, "run": run, "period": (date_from, date_to), "url": download_url(run)},
    )
    message = EmailMessage(subject=subject, body=body, to=definition.recipient_list)
    message.attach(name, content, content_type.split(";")[0])
    message.send(fail_silently=False)

    # `error` keeps the last failed attempt's message, if any: the history of a run that needed retries.
    run.status = RunStatus.SUCCEEDED
    run.emailed_at = run.finished_at = timezone.now()
    run.save(update_fields=["status", "emailed_at", "finished_at"])
    return run


def report_run_fail(*, run: ReportRun, error: BaseException, will_retry: bool) -> ReportRun:
    """Record why a build failed; RETRYING when the task will try again, FAILED when it gave up."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    run.status = RunStatus.RETRYING if will_retry else RunStatus.FAILED
    run.error = text[:4000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    logger.warning("report run %s failed (attempt %s, retry=%s): %s", run.pk, run.attempts, will_retry, text)
    return run


def report_run_request(*, actor: User | None, definition: ReportDefinition) -> None:
    """Build a report now (the admin's "run now"): queued after commit. The request's id names the build
    task, so the event delivered twice (the outbox delivers at least once) builds and mails one report."""
    audit(actor=actor, action="report.requested", obj=definition, organization_id=definition.organization_id)
    events.publish(REPORT_REQUESTED, definition_id=definition.pk, request_id=uuid.uuid4().hex)
