"""Notifications test fixtures: Celery eager except in real-worker tests, SMS and mail into tmp folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opd.celery import app as celery_app


@pytest.fixture(autouse=True)
def celery_mode(request):
    """Eager for unit tests (a task runs in the test process when queued); real queueing for tests
    marked slow, which start real workers."""
    eager = request.node.get_closest_marker("slow") is None
    names = ("task_always_eager", "task_eager_propagates")
    previous = {name: celery_app.conf[name] for name in names}
    celery_app.conf.update(task_always_eager=eager, task_eager_propagates=eager)
    yield
    celery_app.conf.update(previous)


@pytest.fixture(autouse=True)
def sms_dir(tmp_path, settings) -> Path:
    folder = tmp_path / "sms"
    settings.OPD_SMS_FILE_DIR = str(folder)
    settings.OPD_SMS_BACKEND = "notifications.backends.FileSmsBackend"
    return folder


def sms_lines(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("sms-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines
