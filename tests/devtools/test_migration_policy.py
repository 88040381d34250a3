"""Expand, then contract: the migration linter over our migrations on MariaDB (devtools.migration_policy)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from devtools.migration_policy import GRANDFATHERED, ExpandContractLinter

pytestmark = pytest.mark.django_db


def test_no_migration_would_break_the_release_before_it(capsys):
    call_command("lint_migrations")  # raises CommandError on a refused migration

    printed = capsys.readouterr().out  # the linter print()s
    assert "(core, 0005_api_tokens)... IGNORE (grandfathered)" in printed
    assert "Erroneous migrations: 0/" in printed


def test_each_grandfathered_migration_would_be_refused_today():
    """The list holds only what needs it (it may only shrink), and proves the linter refuses a dropped
    table, a NOT NULL column without a database default and a new unique constraint on MariaDB."""
    linter = ExpandContractLinter(grandfathered=frozenset(), no_output=True)

    for key in sorted(GRANDFATHERED):
        linter.lint_migration(linter.migration_loader.disk_migrations[key])

    assert set(linter.refused) == GRANDFATHERED


def test_a_migration_marked_as_the_contract_step_goes_through(monkeypatch):
    linter = ExpandContractLinter(grandfathered=frozenset(), no_output=True)
    drops_tables = linter.migration_loader.disk_migrations[("core", "0005_api_tokens")]
    monkeypatch.setattr(
        drops_tables, "contract_step", "The token tables were last read two releases ago.", raising=False
    )

    linter.lint_migration(drops_tables)

    assert linter.refused == []
    assert linter.let_through[("core", "0005_api_tokens")].startswith("contract step: The token tables")


def test_the_command_refuses_naming_the_migration(monkeypatch):
    monkeypatch.setattr(
        "devtools.migration_policy.GRANDFATHERED", GRANDFATHERED - {("core", "0005_api_tokens")}
    )

    with pytest.raises(CommandError, match=r"core\.0005_api_tokens"):
        call_command("lint_migrations", "core", stdout=io.StringIO())
