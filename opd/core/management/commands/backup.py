"""Back up the live database: `manage.py backup [--output-dir DIR]` (see README, Backups)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opd.core.backups import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Dump the live database with mariadb-dump (one consistent transaction, routines and triggers) into "
        "a gzipped file named by database and UTC time, and print the binlog position when there is one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=None,
            help="Where the file goes (default: OPD_BACKUP_DIR, .data/backups).",
        )

    def handle(self, *args, output_dir: Path | None = None, **options) -> None:
        try:
            backup = backup_create(output_dir=output_dir or Path(settings.OPD_BACKUP_DIR))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Backup of {backup.database}: {backup.path}")
        if backup.binlog_file:
            self.stdout.write(
                f"Binlog position: {backup.binlog_file}:{backup.binlog_position}; replay binlogs from here "
                "for a point-in-time recovery."
            )
        else:
            self.stdout.write("Binlog position: none (binary logging is off, or this user may not read it).")
