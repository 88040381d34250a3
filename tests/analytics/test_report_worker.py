"""A scheduled report built and e-mailed by a real Celery worker process, as beat would start it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from email import message_from_string
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import PeriodicTask

from analytics.models import ReportRun, RunStatus
from analytics.services import report_definition_save
from opd.celery import app
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    return f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 3306}/{db['NAME']}"


@pytest.fixture
def not_eager():
    """Tests run tasks in-process (opd.settings.test); this one sends them to a real worker."""
    saved = app.conf.task_always_eager
    app.conf.update(task_always_eager=False)
    yield
    app.conf.update(task_always_eager=saved)


@pytest.fixture
def worker(tmp_path, settings, not_eager):
    """A worker on a queue of its own, on the test database, writing e-mails and files under tmp_path."""
    if connection.vendor != "mysql":
        pytest.skip("the worker shares the test database, which needs a server (MariaDB)")
    queue = f"analytics-test-{uuid.uuid4().hex[:8]}"
    mail_dir, media = tmp_path / "mail", tmp_path / "media"
    mail_dir.mkdir()
    settings.MEDIA_ROOT = str(media)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opd.settings.base",
        "DATABASE_URL": database_url(),
        # django-environ drops the first slash of the path: four slashes for an absolute one.
        "EMAIL_URL": f"filemail:///{mail_dir}",
        "MEDIA_ROOT": str(media),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "opd",
            "worker",
            "--pool=solo",
            f"--queues={queue}",
            f"--hostname={queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield {"queue": queue, "mail": mail_dir, "media": media, "log": tmp_path / "worker.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for_run(definition_id: int, timeout: float, log: Path) -> ReportRun:
    def finished() -> ReportRun | None:
        run = ReportRun.objects.filter(definition_id=definition_id).first()
        return run if run and run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED) else None

    return wait_until(
        finished,
        timeout=timeout,
        interval=0.3,
        what=lambda: f"a finished run; worker log:\n{log.read_text()[-4000:]}",
    )


def test_a_real_worker_builds_and_emails_the_scheduled_report(world, admin_user, worker):
    yesterday = dt.date.today() - dt.timedelta(days=1)  # noqa: DTZ011 (the report's own window check)
    definition = report_definition_save(
        actor=admin_user,
        organization=world.org,
        name="Yesterday at Riverside",
        recipients="manager@example.org",
        filters={"days": 366},
        format="csv",
        hour="7",
        minute="0",
    )
    task = PeriodicTask.objects.get(pk=definition.periodic_task_id)

    # What beat sends at the scheduled time: the PeriodicTask's task with its kwargs.
    app.send_task(task.task, kwargs=json.loads(task.kwargs), queue=worker["queue"])
    run = wait_for_run(definition.pk, timeout=60, log=worker["log"])

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.period_end == yesterday or run.period_end == yesterday - dt.timedelta(days=1)
    stored = Path(settings.MEDIA_ROOT) / run.file.name
    content = stored.read_text()
    assert content.startswith("date,appointments,")
    assert "2026-01-12,6," in content
    (sent,) = list(worker["mail"].iterdir())
    message = message_from_string(sent.read_text())
    assert message["To"] == "manager@example.org"
    assert "Yesterday at Riverside" in message["Subject"]
    parts = list(message.walk())
    body = next(p for p in parts if p.get_content_type() == "text/plain" and not p.get_filename())
    assert f"/analytics/reports/{run.pk}/download/" in body.get_payload(decode=True).decode()
    attachment = next(p for p in parts if p.get_filename())
    assert attachment.get_filename().endswith(".csv")
    assert attachment.get_payload(decode=True).decode().startswith("date,appointments,")
