"""Patients (#17): phone numbers into E.164, merged duplicates, sign-ups to review.

Existing phone numbers (stored as typed) are rewritten in E.164, read in the region of the patient's
registering clinic (or the organization's first clinic), through the encrypted fields with their blind
index recomputed. Numbers that cannot be read are left exactly as they were and reported here (a count
and the MRNs) and afterwards by `manage.py phone_report`. Going back leaves numbers in E.164: a valid
form of the same number that the old code searched and sent as well.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from patients.phones import plan_phone_numbers


def normalise_phone_numbers(apps, schema_editor):
    Patient = apps.get_model("patients", "Patient")
    normalised, unreadable = 0, []
    for plan in plan_phone_numbers(Patient, apps.get_model("core", "Clinic")):
        if plan.updates:
            # Through the encrypted fields: update() encrypts what it writes.
            Patient.objects.filter(pk=plan.pk).update(**plan.updates)
            normalised += 1
        if plan.unreadable:
            unreadable.append(plan.mrn)
    print(f"\n  Phone numbers: {normalised} patients' numbers normalised to E.164.")
    if unreadable:
        print(
            f"  {len(unreadable)} patients have a number that could not be read and was left as typed "
            f"(list them again with `manage.py phone_report`): {', '.join(unreadable)}"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0011_clinic_phone_region'),
        ('patients', '0004_problems_medications'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='patient',
            name='patients_status_valid',
        ),
        migrations.AddField(
            model_name='patient',
            name='duplicate_review',
            field=models.BooleanField(default=False, editable=False, verbose_name='possible duplicate to review'),
        ),
        migrations.AddField(
            model_name='patient',
            name='merged_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='patient',
            name='merged_into',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='patients.patient'),
        ),
        migrations.AlterField(
            model_name='patient',
            name='status',
            field=models.CharField(choices=[('active', 'Active'), ('inactive', 'Inactive'), ('merged', 'Merged')], default='active', max_length=8),
        ),
        migrations.AddIndex(
            model_name='patient',
            index=models.Index(fields=['organization', 'date_of_birth'], name='patients_org_birth_date'),
        ),
        migrations.AddConstraint(
            model_name='patient',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['active', 'inactive', 'merged'])), name='patients_status_valid'),
        ),
        migrations.AddConstraint(
            model_name='patient',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('merged_into__isnull', False), ('status', 'merged')), models.Q(models.Q(('status', 'merged'), _negated=True), ('merged_into__isnull', True)), _connector='OR'), name='patients_merged_points_somewhere'),
        ),
        migrations.RunPython(normalise_phone_numbers, migrations.RunPython.noop, elidable=False),
    ]
