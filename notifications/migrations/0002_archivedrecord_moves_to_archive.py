# The archive became an app of its own: the model leaves this app's state; its table and rows stay
# (archive.0001 adopts the same table).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("archive", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ArchivedRecord")],
            database_operations=[],
        ),
    ]
