"""Encryption at rest for a message's recipient address, a copy of the patient's e-mail or phone (#15).

The address's blind index is computed from the plaintext, then the values are sealed in batches.
"""

from django.db import migrations, models

import opd.core.fields
from opd.core import crypto
from opd.core.services.encryption import migrate_decrypt_columns, migrate_encrypt_columns

BATCH = 500


def encrypt_rows(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    last = 0
    while True:
        rows = list(Notification.objects.filter(pk__gt=last).order_by("pk").values_list("pk", "to")[:BATCH])
        if not rows:
            break
        for pk, to in rows:
            if to and not crypto.token_key_id(to):
                Notification.objects.filter(pk=pk).update(to_index=crypto.blind_index("address", to))
        last = rows[-1][0]
    migrate_encrypt_columns(apps, schema_editor, "notifications.Notification", ["to"], batch_size=BATCH)


def decrypt_rows(apps, schema_editor):
    migrate_decrypt_columns(apps, schema_editor, "notifications.Notification", ["to"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_archivedrecord_moves_to_archive"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="to_index",
            field=opd.core.fields.BlindIndexField(kind="address", source="to"),
        ),
        # Plain TEXT while rows are rewritten by hand; the encrypted field class after.
        migrations.AlterField(model_name="notification", name="to", field=models.TextField(blank=True)),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
        migrations.AlterField(
            model_name="notification",
            name="to",
            field=opd.core.fields.EncryptedCharField(blank=True, max_length=254),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["organization", "to_index"], name="notifications_org_to_index"),
        ),
    ]
