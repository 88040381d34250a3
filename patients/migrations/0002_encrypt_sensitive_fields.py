"""Encryption at rest for the patient's identifiers and contact details (#15).

The columns become TEXT (a token is longer than the value), existing rows are encrypted in batches and
their blind indexes computed, then the plain `phone_digits` column and its index go. Reversible: going
back decrypts the rows and refills phone_digits.
"""

import re

from django.db import migrations, models

import opd.core.fields
from opd.core import crypto
from opd.core.services.encryption import migrate_decrypt_columns, migrate_encrypt_columns

ENCRYPTED = ["phone", "email", "address", "emergency_contact_phone", "insurance_policy_number"]
BATCH = 500


def encrypt_rows(apps, schema_editor):
    Patient = apps.get_model("patients", "Patient")
    # Indexes first, from the plaintext still there; then the values are sealed.
    last = 0
    while True:
        rows = list(
            Patient.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "phone", "insurance_policy_number")[:BATCH]
        )
        if not rows:
            break
        for pk, phone, policy in rows:
            if crypto.token_key_id(phone or "") or crypto.token_key_id(policy or ""):
                continue  # already sealed by an earlier, interrupted run
            Patient.objects.filter(pk=pk).update(
                phone_index=crypto.blind_index("phone", phone or ""),
                insurance_index=crypto.blind_index("identifier", policy or ""),
            )
        last = rows[-1][0]
    migrate_encrypt_columns(apps, schema_editor, "patients.Patient", ENCRYPTED, batch_size=BATCH)


def decrypt_rows(apps, schema_editor):
    migrate_decrypt_columns(apps, schema_editor, "patients.Patient", ENCRYPTED, batch_size=BATCH)
    Patient = apps.get_model("patients", "Patient")
    for pk, phone in Patient.objects.values_list("pk", "phone").iterator():
        Patient.objects.filter(pk=pk).update(phone_digits=re.sub(r"\D", "", phone or ""))


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="insurance_index",
            field=opd.core.fields.BlindIndexField(kind="identifier", source="insurance_policy_number"),
        ),
        migrations.AddField(
            model_name="patient",
            name="phone_index",
            field=opd.core.fields.BlindIndexField(kind="phone", source="phone"),
        ),
        # Plain text fields while rows are read and rewritten by hand (the encrypted fields would try
        # to decrypt the plaintext); the field classes change after.
        migrations.AlterField(model_name="patient", name="address", field=models.TextField(blank=True)),
        migrations.AlterField(model_name="patient", name="email", field=models.TextField(blank=True)),
        migrations.AlterField(
            model_name="patient", name="emergency_contact_phone", field=models.TextField(blank=True)
        ),
        migrations.AlterField(
            model_name="patient", name="insurance_policy_number", field=models.TextField(blank=True)
        ),
        migrations.AlterField(model_name="patient", name="phone", field=models.TextField(blank=True)),
        migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False),
        migrations.AlterField(
            model_name="patient",
            name="address",
            field=opd.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="patient",
            name="email",
            field=opd.core.fields.EncryptedEmailField(blank=True, max_length=254),
        ),
        migrations.AlterField(
            model_name="patient",
            name="emergency_contact_phone",
            field=opd.core.fields.EncryptedCharField(blank=True, max_length=32),
        ),
        migrations.AlterField(
            model_name="patient",
            name="insurance_policy_number",
            field=opd.core.fields.EncryptedCharField(blank=True, max_length=100),
        ),
        migrations.AlterField(
            model_name="patient",
            name="phone",
            field=opd.core.fields.EncryptedCharField(blank=True, max_length=32),
        ),
        migrations.RemoveIndex(model_name="patient", name="patients_org_phone"),
        migrations.RemoveField(model_name="patient", name="phone_digits"),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["organization", "phone_index"], name="patients_org_phone_index"),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["organization", "insurance_index"], name="patients_org_insurance_index"),
        ),
    ]
