"""Encryption at rest for clinical free text and result attachments (#15).

The columns become TEXT, existing values are encrypted in batches (raw SQL: the encrypted fields would try
to decrypt the plaintext) and existing attachment files are encrypted in place, 0600. Reversible for the
columns (going back decrypts them); files stay encrypted going back.
"""

import consultations.models
import opd.core.fields
import opd.core.storage
from django.db import migrations, models

from opd.core.services.encryption import file_reseal, migrate_decrypt_columns, migrate_encrypt_columns
from opd.core.storage import encrypted_storage

ENCRYPTED = {
    "consultations.Consultation": ["chief_complaint", "history", "examination", "assessment", "plan"],
    "consultations.Addendum": ["text"],
    "consultations.CareNote": ["text"],
    "consultations.Prescription": ["notes"],
    "consultations.PrescriptionItem": ["instructions"],
    "consultations.Result": ["value", "notes"],
}


def encrypt_rows(apps, schema_editor):
    for label, fields in ENCRYPTED.items():
        migrate_encrypt_columns(apps, schema_editor, label, fields)
    Result = apps.get_model("consultations", "Result")
    storage = encrypted_storage()
    for name in Result.objects.exclude(attachment="").values_list("attachment", flat=True).iterator():
        file_reseal(storage, name)


def decrypt_rows(apps, schema_editor):
    for label, fields in ENCRYPTED.items():
        migrate_decrypt_columns(apps, schema_editor, label, fields)


class Migration(migrations.Migration):

    dependencies = [
        ('consultations', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='addendum',
            name='text',
            field=opd.core.fields.EncryptedTextField(max_length=10000),
        ),
        migrations.AlterField(
            model_name='carenote',
            name='text',
            field=opd.core.fields.EncryptedTextField(max_length=10000),
        ),
        migrations.AlterField(
            model_name='consultation',
            name='assessment',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000, verbose_name='assessment / diagnosis'),
        ),
        migrations.AlterField(
            model_name='consultation',
            name='chief_complaint',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000),
        ),
        migrations.AlterField(
            model_name='consultation',
            name='examination',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000),
        ),
        migrations.AlterField(
            model_name='consultation',
            name='history',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000),
        ),
        migrations.AlterField(
            model_name='consultation',
            name='plan',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000),
        ),
        migrations.AlterField(
            model_name='prescription',
            name='notes',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=2000),
        ),
        migrations.AlterField(
            model_name='prescriptionitem',
            name='instructions',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=1000),
        ),
        migrations.AlterField(
            model_name='result',
            name='attachment',
            field=models.FileField(blank=True, max_length=255, storage=opd.core.storage.encrypted_storage, upload_to=consultations.models.result_attachment_path),
        ),
        migrations.AlterField(
            model_name='result',
            name='notes',
            field=opd.core.fields.EncryptedTextField(blank=True, max_length=10000),
        ),
        migrations.AlterField(
            model_name='result',
            name='value',
            field=opd.core.fields.EncryptedCharField(blank=True, help_text="A number, or text such as 'positive'.", max_length=100),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
    ]
