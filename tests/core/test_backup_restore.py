"""`manage.py backup` and `manage.py restore --verify` (#19.6): a seeded database backed up and restored
elsewhere holds the same rows per table and an audit trail that verifies; a doctored backup is caught;
bad arguments are refused before anything is written."""

from __future__ import annotations

import gzip
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from opd.core.audit import audit
from opd.core.backups import database_exists, table_counts
from opd.core.services.audit_chain import audit_seal_all
from tests.conftest import future_slot
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the dump reads committed rows on its own connection

MARKER = 424242


@pytest.fixture
def scratch():
    """The default restore target (<live>_restore), dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restore"
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def seeded(org, clinic, department, doctor, staff_user, book):
    patients = PatientFactory.create_batch(6, organization=org)
    for number, patient in enumerate(patients):
        book(patient, future_slot(doctor, department, days=2 + number))
    audit(actor=staff_user, action="organization.changed", obj=org, organization_id=org.pk, n=MARKER)
    audit_seal_all()  # sealed now, as beat does each minute: the copy must verify against these seals
    return patients


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def statement(text: str, table: str) -> tuple[str, str, str]:
    """The dump split around TABLE's INSERT statement: (before, the statement, after)."""
    start = text.index(f"INSERT INTO `{table}` VALUES")
    end = text.index(";\n", start) + 1
    return text[:start], text[start:end], text[end:]


def back_up(tmp_path: Path) -> Path:
    out = run("backup", "--output-dir", str(tmp_path))
    (path,) = tmp_path.glob("*.sql.gz")
    assert re.fullmatch(rf"opd-{connection.settings_dict['NAME']}-\d{{8}}T\d{{6}}Z\.sql\.gz", path.name)
    assert str(path) in out
    return path


def test_it_backs_up_and_restores_a_seeded_database_with_its_rows_and_audit_trail(seeded, scratch, tmp_path):
    live_name = connection.settings_dict["NAME"]
    path = back_up(tmp_path)

    out = run("restore", str(path), "--verify")

    assert f"into {scratch}" in out
    assert "Row counts: all" in out
    assert "The audit trail verified." in out
    live = table_counts(live_name)
    assert table_counts(scratch) == live
    assert live["patients_patient"] >= 6
    assert live["scheduling_appointment"] == 6
    assert live["core_auditevent"] > 0

    # Neither the live database nor a restored copy is replaced without --force.
    PatientFactory()
    live = table_counts(live_name)
    with pytest.raises(CommandError, match="live database; restoring over it needs --force"):
        run("restore", str(path), "--database", live_name)
    with pytest.raises(CommandError, match="exists and holds tables; pass --force"):
        run("restore", str(path))
    assert table_counts(live_name) == live


def test_verify_catches_a_doctored_backup(seeded, scratch, tmp_path):
    path = back_up(tmp_path)
    text = gzip.decompress(path.read_bytes()).decode()
    # An audit row altered in the file...
    head, rows, tail = statement(text, "core_auditevent")
    assert str(MARKER) in rows
    text = head + rows.replace(str(MARKER), str(MARKER + 1)) + tail
    # ...and rows the server drops on load (INSERT IGNORE of duplicate keys) while the dump holds them.
    head, rows, tail = statement(text, "patients_patient")
    text = head + rows + "\n" + rows.replace("INSERT INTO", "INSERT IGNORE INTO", 1) + tail
    path.write_bytes(gzip.compress(text.encode()))

    out = StringIO()
    with pytest.raises(CommandError, match=r"failed: 1 table\(s\) with other row counts, the audit trail\.$"):
        call_command("restore", str(path), "--verify", stdout=out, stderr=StringIO())
    assert "ROWS    patients_patient: " in out.getvalue()
    assert "FAILED" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.sql.gz"], "No backup file"),
        (["not-gzip.sql.gz"], "not a gzipped dump"),
        (["truncated.sql.gz"], "could not be read to the end"),
        (["good.sql.gz", "--database", "opd; DROP DATABASE opd"], "not a database name we accept"),
    ],
)
def test_it_refuses_bad_arguments_and_writes_nothing(db, scratch, tmp_path, args, message):
    (tmp_path / "not-gzip.sql.gz").write_text("SELECT 1;")
    (tmp_path / "good.sql.gz").write_bytes(gzip.compress(b"SELECT 1;\n"))
    whole = gzip.compress(b"CREATE TABLE t (id int);\n" + b"-- padding\n" * 10000)
    (tmp_path / "truncated.sql.gz").write_bytes(whole[: len(whole) // 2])

    with pytest.raises(CommandError, match=message):
        run("restore", *(str(tmp_path / args[0]), *args[1:]))

    if message != "could not be read to the end":
        assert not database_exists(scratch)


def test_backup_refuses_an_output_path_that_is_a_file(db, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CommandError, match="is not a directory"):
        run("backup", "--output-dir", str(tmp_path / "file"))
