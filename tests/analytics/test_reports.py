"""Scheduled reports: definitions and their beat schedule, builds, e-mail, failures and retries, downloads."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from analytics.models import ReportDefinition, ReportRun, RunStatus
from analytics.services import (
    REPORT_REQUESTED,
    report_definition_delete,
    report_definition_save,
    report_period,
    report_run_request,
)
from analytics.tasks import MAX_RETRIES, build_report
from opd.core import events
from opd.core.errors import NotFound, ValidationFailed
from opd.core.models import OutboxEvent

from .conftest import MON, TUE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def frozen_period(monkeypatch):
    """Reports cover the days up to yesterday; pin "today" to the Wednesday after the fixed days."""
    import analytics.services as services

    original = services.report_period
    monkeypatch.setattr(
        services, "report_period", lambda definition, today=None: original(definition, dt.date(2026, 1, 14))
    )


def define(admin_user, **fields):
    values = {
        "name": "Weekly figures",
        "recipients": "boss@example.org, ops@example.org",
        "filters": {"days": 2},
        "hour": "6",
        "minute": "30",
        "day_of_week": "1",
        "time_zone": "Europe/London",
        **fields,
    }
    return report_definition_save(actor=admin_user, organization=admin_user.organization, **values)


def test_saving_a_definition_schedules_it_with_beat(world, admin_user):
    definition = define(admin_user)

    task = PeriodicTask.objects.get(pk=definition.periodic_task_id)
    assert task.task == "analytics.build_report"
    assert json.loads(task.kwargs) == {"definition_id": definition.pk}
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "6", "1")
    assert str(task.crontab.timezone) == "Europe/London"
    assert definition.recipients == "boss@example.org\nops@example.org"


def test_changing_a_definition_changes_its_schedule(world, admin_user):
    definition = define(admin_user)

    report_definition_save(
        actor=admin_user, organization=world.org, definition=definition, hour="18", is_active=False
    )

    task = PeriodicTask.objects.get(pk=definition.periodic_task_id)
    assert task.crontab.hour == "18"
    assert not task.enabled
    assert PeriodicTask.objects.filter(task="analytics.build_report").count() == 1


def test_deleting_a_definition_removes_its_schedule(world, admin_user):
    definition = define(admin_user)
    task_id = definition.periodic_task_id

    report_definition_delete(actor=admin_user, definition=definition)

    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert not ReportDefinition.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"recipients": "not-an-address"},
        {"recipients": ""},
        {"filters": {"weeks": 2}},
        {"filters": {"days": 0}},
        {"filters": {"clinics": "1"}},
        {"hour": "25"},
        {"time_zone": "Mars/Olympus"},
    ],
)
def test_it_refuses_a_bad_definition(world, admin_user, fields):
    with pytest.raises(ValidationFailed):
        define(admin_user, **fields)
    assert not PeriodicTask.objects.filter(task="analytics.build_report").exists()


def test_it_refuses_another_organizations_clinic_in_the_filters(world, admin_user):
    with pytest.raises(NotFound) as refused:
        define(admin_user, filters={"clinics": [world.other_org_clinic.pk]})
    assert "filters" in refused.value.fields


def test_a_report_covers_the_days_up_to_yesterday(world, admin_user):
    definition = define(admin_user, filters={"days": 7})

    assert report_period(definition, dt.date(2026, 1, 14)) == (dt.date(2026, 1, 7), TUE)


def test_it_builds_stores_and_emails_a_csv_report(world, admin_user, frozen_period):
    definition = define(admin_user)

    result = build_report.apply(kwargs={"definition_id": definition.pk})

    run = ReportRun.objects.get(pk=result.get())
    assert (run.status, run.attempts, run.error) == (RunStatus.SUCCEEDED, 1, "")
    assert (run.period_start, run.period_end) == (MON, TUE)
    assert run.clinic_ids == sorted([world.clinic.pk, world.other_clinic.pk])
    rows = list(csv.DictReader(io.StringIO(run.file.read().decode())))
    assert [r["date"] for r in rows] == ["2026-01-12", "2026-01-13", "total"]
    assert (rows[0]["appointments"], rows[0]["wait_p90_minutes"], rows[2]["appointments"]) == (
        "6",
        "27.0",
        "9",
    )
    (message,) = mail.outbox
    assert message.to == ["boss@example.org", "ops@example.org"]
    assert "Weekly figures" in message.subject
    assert reverse("analytics:report-download", args=[run.pk]) in message.body
    (name, content, mimetype) = message.attachments[0]
    assert name.endswith(".csv")
    assert mimetype == "text/csv"
    assert str(content).startswith("date,appointments,")  # text attachments are kept as str


def test_it_builds_html_reports_of_every_kind(world, clinical, admin_user, frozen_period):
    for kind, expected in (("daily", "27.0"), ("news2", "low_medium"), ("care_notes", "incident")):
        definition = define(admin_user, name=f"HTML {kind}", kind=kind, format="html")
        run = ReportRun.objects.get(pk=build_report.apply(kwargs={"definition_id": definition.pk}).get())
        html = run.file.read().decode()
        assert html.startswith("<!doctype html>")
        assert expected in html
        assert run.content_type.startswith("text/html")


def test_a_failed_build_is_recorded_and_retried(world, admin_user, frozen_period, monkeypatch):
    definition = define(admin_user)
    attempts = []
    send = EmailMessage.send

    def flaky(self, *args, **kwargs):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("mail server down")
        return send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", flaky)

    build_report.apply(kwargs={"definition_id": definition.pk})

    run = ReportRun.objects.get(definition=definition)
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 3)
    assert "ConnectionRefusedError: mail server down" in run.error  # the last failure is kept
    assert len(mail.outbox) == 1


def test_a_report_that_keeps_failing_ends_failed_with_its_error(
    world, admin_user, frozen_period, monkeypatch
):
    definition = define(admin_user)

    def down(self, *args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(EmailMessage, "send", down)

    result = build_report.apply(kwargs={"definition_id": definition.pk})

    assert result.failed()
    run = ReportRun.objects.get(definition=definition)
    assert (run.status, run.attempts) == (RunStatus.FAILED, MAX_RETRIES + 1)
    assert "mail server down" in run.error
    assert not mail.outbox


def test_a_redelivered_message_builds_nothing_twice(world, admin_user, frozen_period):
    definition = define(admin_user)

    build_report.apply(kwargs={"definition_id": definition.pk}, task_id="same-delivery")
    again = build_report.apply(kwargs={"definition_id": definition.pk}, task_id="same-delivery")

    assert again.get() is None
    assert ReportRun.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.fixture
def built_run(world, admin_user, frozen_period):
    definition = define(admin_user)
    return ReportRun.objects.get(pk=build_report.apply(kwargs={"definition_id": definition.pk}).get())


def test_admins_download_their_reports(client, built_run, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("analytics:report-download", args=[built_run.pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content).startswith(b"date,appointments,")


def test_staff_cannot_download_a_report_covering_clinics_they_do_not_work_at(client, built_run, staff_user):
    client.force_login(staff_user)

    assert client.get(reverse("analytics:report-download", args=[built_run.pk])).status_code == 404


def test_another_organization_cannot_download_it(client, built_run, other_org_user):
    client.force_login(other_org_user)

    assert client.get(reverse("analytics:report-download", args=[built_run.pk])).status_code == 404


def test_admins_define_reports_in_the_admin(client, world, admin_user):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:analytics_reportdefinition_add"),
        {
            "name": "Daily to the board",
            "kind": "daily",
            "format": "csv",
            "filters": json.dumps({"days": 1, "clinics": [world.clinic.pk]}),
            "recipients": "board@example.org",
            "is_active": "on",
            "minute": "0",
            "hour": "7",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "time_zone": "Europe/London",
            "runs-TOTAL_FORMS": "0",
            "runs-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    definition = ReportDefinition.objects.get(name="Daily to the board")
    assert definition.organization == world.org
    assert definition.periodic_task.enabled


def test_the_admin_shows_filter_errors_beside_the_form(client, world, admin_user):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:analytics_reportdefinition_add"),
        {
            "name": "Elsewhere",
            "kind": "daily",
            "format": "csv",
            "filters": json.dumps({"clinics": [world.other_org_clinic.pk]}),
            "recipients": "board@example.org",
            "minute": "0",
            "hour": "7",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "time_zone": "UTC",
            "runs-TOTAL_FORMS": "0",
            "runs-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "unknown clinic" in response.content.decode().lower()
    assert not ReportDefinition.objects.exists()


def test_staff_have_no_report_admin(client, world, staff_user):
    client.force_login(staff_user)

    assert client.get(reverse("admin:analytics_reportdefinition_changelist")).status_code == 403


def test_the_admin_lists_a_definitions_runs_with_their_files(client, built_run, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("admin:analytics_reportdefinition_change", args=[built_run.definition_id]))

    assert page.status_code == 200
    assert reverse("analytics:report-download", args=[built_run.pk]) in page.content.decode()


def test_run_now_queues_the_build_after_commit(
    client, world, admin_user, monkeypatch, django_capture_on_commit_callbacks
):
    definition = define(admin_user)
    queued = []
    monkeypatch.setattr(build_report, "apply_async", lambda kwargs, task_id: queued.append((kwargs, task_id)))
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:analytics_reportdefinition_changelist"),
            {"action": "run_now", "_selected_action": [definition.pk]},
        )

    assert response.status_code == 302
    [(kwargs, task_id)] = queued
    assert kwargs == {"definition_id": definition.pk}
    assert task_id.startswith("report-request-")


def test_run_now_delivered_twice_builds_and_mails_one_report(
    world, admin_user, frozen_period, django_capture_on_commit_callbacks
):
    definition = define(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        report_run_request(actor=admin_user, definition=definition)
    assert ReportRun.objects.count() == 1

    # The outbox delivers at least once: the relay may deliver the stored event again.
    stored = OutboxEvent.objects.get(event=REPORT_REQUESTED)
    assert events.deliver(stored.event, stored.payload) is None

    assert ReportRun.objects.get().status == RunStatus.SUCCEEDED
    assert len(mail.outbox) == 1


def test_the_emailed_link_is_built_on_the_sites_own_address(world, admin_user, frozen_period, settings):
    settings.OPD_SITE_URL = "https://opd.clinic.example"
    definition = define(admin_user)

    run = ReportRun.objects.get(pk=build_report.apply(kwargs={"definition_id": definition.pk}).get())

    (message,) = mail.outbox
    link = "https://opd.clinic.example" + reverse("analytics:report-download", args=[run.pk])
    assert link in message.body
    assert ":8000" not in message.body
