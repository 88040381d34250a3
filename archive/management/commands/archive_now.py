"""Move rows past the retention into the archive now (beat runs the same job nightly)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from archive import conf
from archive.services import archival_candidates, archival_run


class Command(BaseCommand):
    help = (
        "Archive appointments (with everything that refers to them) that ended more than the retention "
        "ago (OPD_ARCHIVE_RETENTION_DAYS, about 5 years), in batches of one transaction each. Nothing is "
        "deleted: `restore_archive` puts rows back. A second run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--retention-days", type=int, default=None, help="Override the retention.")
        parser.add_argument("--batch-size", type=int, default=None, help="Roots per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would move.")

    def handle(self, *args, retention_days=None, batch_size=None, dry_run=False, **options) -> None:
        if retention_days is not None and retention_days < 1:
            raise CommandError("--retention-days must be at least 1.")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        days = retention_days or conf.retention_days()
        if dry_run:
            for label, count in archival_candidates(retention_days=days).items():
                self.stdout.write(f"{label}: {count} would be archived (older than {days} days)")
            return
        report = archival_run(retention_days=days, batch_size=batch_size)
        self.stdout.write(f"Archived {report.groups} groups, {report.total} rows.")
        for label, count in sorted(report.rows.items()):
            self.stdout.write(f"  {label}: {count}")
