# ArchivedRecord moved here from notifications: this adopts its table (notifications_archivedrecord) and
# rows without touching them, moves its content type (so admin permissions follow), and renames the
# nightly beat entry to the task's new name.

import django.db.models.deletion
from django.db import migrations, models

import opd.core.json


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if ContentType.objects.filter(app_label="archive", model="archivedrecord").exists():
        return
    ContentType.objects.filter(app_label="notifications", model="archivedrecord").update(app_label="archive")


def content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="archive", model="archivedrecord").update(app_label="notifications")


def rename_beat_entry(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="notifications.archive").update(task="archive.archive_old_records")
    if not PeriodicTask.objects.filter(name="archive.archive_old_records").exists():
        PeriodicTask.objects.filter(name="notifications.archive").update(name="archive.archive_old_records")


def beat_entry_back(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="archive.archive_old_records").update(task="notifications.archive")
    PeriodicTask.objects.filter(name="archive.archive_old_records").update(name="notifications.archive")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("core", "0003_idempotency_key_case_sensitive"),
        ("notifications", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ArchivedRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "model",
                            models.CharField(help_text="app_label.model_name of the archived row", max_length=100),
                        ),
                        ("object_pk", models.CharField(max_length=64)),
                        ("root_model", models.CharField(max_length=100)),
                        ("root_pk", models.CharField(max_length=64)),
                        ("position", models.PositiveIntegerField()),
                        ("data", models.JSONField(encoder=opd.core.json.FullPrecisionJSONEncoder)),
                        ("archived_at", models.DateTimeField()),
                        (
                            "organization",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="core.organization",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "notifications_archivedrecord",
                        "ordering": ["root_model", "root_pk", "position"],
                        "indexes": [
                            models.Index(
                                fields=["root_model", "root_pk", "position"], name="notifications_archive_group"
                            ),
                            models.Index(fields=["organization", "archived_at"], name="notifications_archive_org"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("model", "object_pk"), name="notifications_archive_row_once"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, content_type_back),
        migrations.RunPython(rename_beat_entry, beat_entry_back),
    ]
