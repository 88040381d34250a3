"""Beat entries stored by an earlier release keep running after their tasks moved app."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from opd.celery import app as celery_app

pytestmark = pytest.mark.django_db


def stored_entry(name: str) -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name=name, task=name, interval=every)


@pytest.mark.parametrize(
    ("migration", "function", "old", "new"),
    [
        (
            "archive.migrations.0001_initial",
            "rename_beat_entry",
            "notifications.archive",
            "archive.archive_old_records",
        ),
        (
            "scheduling.migrations.0005_no_show_sweep_beat_entry",
            "rename",
            "notifications.sweep_no_shows",
            "scheduling.sweep_no_shows",
        ),
    ],
)
def test_the_migration_renames_a_stored_entry_to_a_task_that_exists(migration, function, old, new):
    entry = stored_entry(old)

    getattr(importlib.import_module(migration), function)(apps, None)

    entry.refresh_from_db()
    assert (entry.name, entry.task) == (new, new)
    celery_app.loader.import_default_modules()
    assert new in celery_app.tasks
    assert old not in celery_app.tasks
