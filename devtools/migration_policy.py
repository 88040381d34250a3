"""Expand, then contract: no migration may break the release before it while both run (a rolling deploy).

django-migration-linter reads each migration's SQL (sqlmigrate, on MariaDB) and refuses what the previous
release's code cannot live with: dropping or renaming a column or table, a NOT NULL column without a
database default (the old code's INSERTs leave it out), a new unique constraint, and the like. Such a
change is split: the expand migration (nullable column, or one with `db_default`) ships with the code that
writes it; the contract migration (NOT NULL, the drop) ships a release later, once no running code reads
the old shape, and says so with a class attribute that a reviewer reads:

    class Migration(migrations.Migration):
        contract_step = "Drops Patient.phone_digits: release 2026.12 stopped reading it."

Migrations written before this rule are listed in GRANDFATHERED (they all ran with the whole platform
stopped); the list only ever shrinks. Third-party apps' migrations are their maintainers' (not linted).
"""

from __future__ import annotations

from typing import Any

from django.db.migrations import Migration
from django_migration_linter import MigrationLinter
from django_migration_linter.migration_linter import MessageType

# Our apps (labels): the ones whose migrations we write.
OUR_APPS = (
    "core",
    "patients",
    "scheduling",
    "consultations",
    "billing",
    "notifications",
    "analytics",
    "archive",
)
CONTRACT_MARKER = "contract_step"
# Refused by the linter, written before the rule (2026-12-06); each still is (tests/devtools prove it).
GRANDFATHERED = frozenset(
    {
        ("consultations", "0002_encrypt_sensitive_fields"),
        ("consultations", "0004_consultation_version_and_vitals_not_taken"),
        ("core", "0002_clinic_checkin_opens_minutes"),
        ("core", "0004_email_verification_and_public_clinics"),
        ("core", "0005_api_tokens"),
        ("core", "0006_audit_context_and_access_fields"),
        ("core", "0007_second_factor"),
        ("core", "0008_audit_append_only_and_hash_chain"),
        ("core", "0009_access_log_grants_reviews"),
        ("core", "0010_membership_nurse"),
        ("core", "0011_clinic_phone_region"),
        ("notifications", "0003_encrypt_recipient_address"),
        ("patients", "0002_encrypt_sensitive_fields"),
        ("patients", "0005_phone_e164_merges_duplicates"),
        ("scheduling", "0002_tokencounter_appointment_called_at_and_more"),
        ("scheduling", "0003_queue_live"),
        ("scheduling", "0006_appointment_undo_skip"),
    }
)


class ExpandContractLinter(MigrationLinter):
    """The linter over our apps, letting through the grandfathered migrations and contract steps.

    `refused` lists (app, migration) the linter found backward incompatible; `let_through` what it did not
    look at, with why.
    """

    def __init__(self, *, grandfathered: frozenset[tuple[str, str]] = GRANDFATHERED, **options: Any):
        super().__init__(no_cache=True, include_apps=OUR_APPS, **options)
        self.grandfathered = grandfathered
        self.refused: list[tuple[str, str]] = []
        self.let_through: dict[tuple[str, str], str] = {}

    def lint_migration(self, migration: Migration) -> None:
        key = (migration.app_label, migration.name)
        reason = getattr(migration, CONTRACT_MARKER, None)
        if reason or key in self.grandfathered:
            self.let_through[key] = f"contract step: {reason}" if reason else "grandfathered"
            self.nb_total += 1
            self.nb_ignored += 1
            self.print_linting_msg(*key, f"IGNORE ({self.let_through[key]})", MessageType.IGNORE)
            return
        errors_before = self.nb_erroneous
        super().lint_migration(migration)
        if self.nb_erroneous > errors_before:
            self.refused.append(key)
