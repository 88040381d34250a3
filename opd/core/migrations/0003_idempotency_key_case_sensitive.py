"""Idempotency keys compare byte for byte on MySQL/MariaDB.

The database's default collation (utf8mb4_unicode_ci) compares text without regard to case, so a
client's keys "a1" and "A1" would have been one key: the second request would have been refused as a
reuse or answered with the first one's replay. The column gets the binary collation there. Other
databases already compare exactly (SQLite's default is BINARY), and the model states no collation,
since a collation name belongs to one database; this migration is the one place that knows it.
"""

from django.db import migrations

TABLE, COLUMN = "core_idempotencyrecord", "key"


def _set_collation(collation: str):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "mysql":
            return
        quote = connection.ops.quote_name
        schema_editor.execute(
            f"ALTER TABLE {quote(TABLE)} MODIFY {quote(COLUMN)} varchar(255) "
            f"CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
        )

    return run


class Migration(migrations.Migration):
    dependencies = [("core", "0002_clinic_checkin_opens_minutes")]

    operations = [
        # Not atomic: MySQL commits DDL itself, and Django refuses DDL inside a transaction there.
        migrations.RunPython(
            _set_collation("utf8mb4_bin"), _set_collation("utf8mb4_unicode_ci"), atomic=False
        ),
    ]
