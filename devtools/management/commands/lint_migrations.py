"""`manage.py lint_migrations`: refuses a migration the previous release could not run beside
(devtools.migration_policy). Needs a migrated database: MariaDB's SQL for some operations depends on
the tables as they are. The suite runs the same check (tests/devtools/test_migration_policy.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools import migration_policy


class Command(BaseCommand):
    help = "Refuse backward-incompatible migrations unless grandfathered or marked as the contract step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only this app's migrations (default: all of ours).")

    def handle(self, *args: Any, **options: Any) -> None:
        linter = migration_policy.ExpandContractLinter(
            grandfathered=migration_policy.GRANDFATHERED, quiet=["ok"] if options["verbosity"] < 2 else []
        )
        linter.lint_all_migrations(app_label=options["app_label"])
        linter.print_summary()
        if linter.refused:
            names = ", ".join(f"{app}.{name}" for app, name in linter.refused)
            raise CommandError(
                f"Backward-incompatible migrations: {names}. Split each into expand and contract steps, "
                'and mark the contract migration with `contract_step = "why it is safe now"`.'
            )
