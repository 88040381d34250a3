"""Each clinic's phone number region (#17), filled for existing clinics from their time zone's country
(Europe/London: GB, Asia/Kolkata: IN; blank for UTC, where numbers need their country code)."""

from django.db import migrations, models

import opd.core.phones


def fill_regions(apps, schema_editor):
    Clinic = apps.get_model("core", "Clinic")
    for clinic in Clinic.objects.filter(phone_region="").only("pk", "time_zone"):
        region = opd.core.phones.region_for_time_zone(clinic.time_zone)
        if region:
            Clinic.objects.filter(pk=clinic.pk).update(phone_region=region)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0010_membership_nurse"),
    ]

    operations = [
        migrations.AddField(
            model_name="clinic",
            name="phone_region",
            field=models.CharField(
                blank=True,
                help_text="Country of the phone numbers typed here without a country code (ISO 3166, e.g. GB, "
                "IN). Blank: the country of the clinic's time zone.",
                max_length=2,
                validators=[opd.core.phones.validate_phone_region],
                verbose_name="phone number region",
            ),
        ),
        migrations.RunPython(fill_regions, migrations.RunPython.noop, elidable=True),
    ]
