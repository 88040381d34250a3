"""Backups hold ciphertext (#15): a dump of the database made with MariaDB's own tool contains no
plaintext insurance number, phone number, address, e-mail or clinical note, while the app reads them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.db import connection

from tests.core.test_encryption import PLAINTEXTS, assert_reads_back, make_record

DUMP = shutil.which("mariadb-dump") or shutil.which("mysqldump")


@pytest.mark.skipif(DUMP is None, reason="needs mariadb-dump or mysqldump")
@pytest.mark.django_db(transaction=True)  # committed rows: the dump reads through its own connection
def test_a_database_dump_holds_no_plaintext_of_sensitive_fields(
    org, clinic, department, doctor, staff_user, book, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    record = make_record(
        org=org,
        clinic=clinic,
        department=department,
        doctor=doctor,
        staff_user=staff_user,
        book=book,
        media_root=tmp_path / "media",
    )
    db = connection.settings_dict
    dump = subprocess.run(  # noqa: S603  # the machine's own dump tool, fixed arguments
        [
            str(DUMP),
            "--single-transaction",
            "--skip-extended-insert",  # one row per line: what a reader of a leaked backup would grep
            f"--host={db['HOST'] or '127.0.0.1'}",
            f"--port={db['PORT'] or 3306}",
            f"--user={db['USER']}",
            db["NAME"],
        ],
        env={**os.environ, "MYSQL_PWD": db["PASSWORD"] or ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    assert "Hiddenfield" in dump  # the patient's row is in the dump (names stay plain)...
    assert "e1:" in dump  # ...with its sealed values
    assert [text for text in PLAINTEXTS if text in dump] == []
    assert_reads_back(record)
