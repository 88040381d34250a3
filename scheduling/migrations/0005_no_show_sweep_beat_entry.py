# The no-show sweep moved from notifications to scheduling (its rule): the beat entry follows the task.

from django.db import migrations

OLD, NEW = "notifications.sweep_no_shows", "scheduling.sweep_no_shows"


def rename(apps, schema_editor, old=OLD, new=NEW):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=old).update(task=new)
    if not PeriodicTask.objects.filter(name=new).exists():
        PeriodicTask.objects.filter(name=old).update(name=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0004_analytics_indexes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
