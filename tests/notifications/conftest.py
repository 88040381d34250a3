"""Notifications test fixtures: Celery eager except in real-worker tests, SMS and mail into tmp folders,
and booking helpers that let the booking's on-commit events run."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
from django.utils import timezone

from opd.celery import app as celery_app
from scheduling.services import appointment_book
from tests.factories import SlotFactory


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


_slot_offsets = itertools.count()


def future_slot(doctor, department, *, days: float = 3, **kwargs):
    """A slot about `days` ahead; each call's slot starts 20 minutes after the previous call's."""
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=days, minutes=20 * next(_slot_offsets))
    return SlotFactory(doctor=doctor, department=department, start=start, capacity=4, **kwargs)


@pytest.fixture
def book(django_capture_on_commit_callbacks, staff_user):
    """book(patient, slot) -> appointment, with the booking's events (and the sends they queue) run."""

    def run(patient, slot, actor=None):
        with django_capture_on_commit_callbacks(execute=True):
            return appointment_book(actor=actor or staff_user, patient=patient, slot=slot)

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """with committed(): ... runs what the block registers with on_commit, as a real commit would."""

    def context():
        return django_capture_on_commit_callbacks(execute=True)

    return context
