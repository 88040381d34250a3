"""Restore a backup: `manage.py restore FILE [--database NAME] [--force] [--verify]` (README, Backups)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opd.core.backups import (
    BackupError,
    audit_verify_in,
    count_differences,
    live_database,
    restore_database,
)


class Command(BaseCommand):
    help = (
        "Load a file written by `manage.py backup` into a database: by default a scratch one "
        "(<live>_restore), never over an existing database without --force. --verify then compares each "
        "table's rows with the dump's and runs audit_verify against the restored copy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="A .sql.gz file written by `manage.py backup`.")
        parser.add_argument("--database", help="Restore into this database (default: <live name>_restore).")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Drop and replace the database if it exists (needed for the live one).",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="After loading, compare row counts per table and verify the audit chains of the copy.",
        )

    def handle(self, *args, file: Path, database: str | None, force: bool, verify: bool, **options) -> None:
        try:
            target = database or f"{live_database()}_restore"
            restored = restore_database(path=file, database=target, force=force)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(restored.dump_counts.values())
        self.stdout.write(f"Restored {file} into {target}: {len(restored.tables)} tables, {rows} rows.")
        if not verify:
            return
        problems = count_differences(restored)
        for problem in problems:
            self.stdout.write(f"ROWS    {problem}")
        if not problems:
            self.stdout.write(f"Row counts: all {len(restored.tables)} tables match the dump.")
        audit = audit_verify_in(target)
        self.stdout.write(audit.stdout.rstrip())
        if audit.returncode != 0:
            self.stdout.write(audit.stderr.rstrip())
        if problems or audit.returncode != 0:
            raise CommandError(
                f"Verification of {target} failed: "
                + ", ".join(
                    part
                    for part, bad in (
                        (f"{len(problems)} table(s) with other row counts", problems),
                        ("the audit trail", audit.returncode != 0),
                    )
                    if bad
                )
                + "."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Verified: {target} holds the backup, and its audit trail verifies.")
        )
