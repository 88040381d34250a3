"""Backups with MariaDB's own tools: `manage.py backup` dumps, `manage.py restore` loads and verifies.

A backup is one gzipped `mariadb-dump` of the application database taken in a single transaction (a
consistent snapshot without locking writers), with routines and triggers (the audit tables' append-only
triggers are part of the schema). It names no database inside, so it restores under any name: a scratch
database for checking it, or the live one with --force.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.db import connections

# A database name we pass to the client and quote ourselves: letters, digits and underscores only.
DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
INSERT = re.compile(r"^INSERT (?:IGNORE )?INTO `((?:[^`]|``)+)` VALUES\s*")
# One token of an extended INSERT's value list: a quoted string (mariadb-dump escapes with backslashes),
# or a parenthesis. A row is a parenthesis opened at depth 0.
VALUE_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|[()]", re.DOTALL)
BINLOG_POSITION = re.compile(r"CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)")
GZIP_MAGIC = b"\x1f\x8b"


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why (commands show it as an error)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    database: str
    binlog_file: str | None
    binlog_position: int | None


@dataclass
class Restored:
    database: str
    # Rows per table as written in the dump file, counted while it streamed into the server.
    dump_counts: Counter[str] = field(default_factory=Counter)
    tables: list[str] = field(default_factory=list)


def _settings_dict() -> dict[str, Any]:
    db = connections["default"].settings_dict
    if db["ENGINE"] != "django.db.backends.mysql":
        raise BackupError(
            "Backups work on MariaDB/MySQL (DATABASE_URL=mysql://...); the SQLite file of `make run` is "
            "copied as a file."
        )
    return dict(db)


def live_database() -> str:
    return str(_settings_dict()["NAME"])


def check_database_name(name: str) -> None:
    if not DATABASE_NAME.match(name):
        raise BackupError(
            f"{name!r} is not a database name we accept: letters, digits and underscores, at most 64."
        )


@contextlib.contextmanager
def _client_options() -> Iterator[list[str]]:
    """The connection options for the MariaDB client tools, the password in a private option file.

    On the command line the password would show in `ps` to every user of the machine.
    """
    db = _settings_dict()
    with tempfile.NamedTemporaryFile("w", prefix="opd-client-", suffix=".cnf", delete=False) as cnf:
        os.chmod(cnf.name, 0o600)
        cnf.write(
            "[client]\n"
            f"user={db['USER']}\n"
            f"password={db['PASSWORD'] or ''}\n"
            f"host={db['HOST'] or '127.0.0.1'}\n"
            f"port={db['PORT'] or 3306}\n"
        )
    try:
        # --defaults-extra-file must come first on the client's command line.
        yield [f"--defaults-extra-file={cnf.name}", "--default-character-set=utf8mb4"]
    finally:
        os.unlink(cnf.name)


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise BackupError(f"{names[0]} is not installed (Debian: mariadb-client).")


def _binlog_enabled() -> bool:
    """Whether the server writes a binary log that this user may read the position of."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT @@log_bin")
        row = cursor.fetchone()
        if not row or not row[0]:
            return False
        try:
            cursor.execute("SHOW MASTER STATUS")
        except Exception:  # no BINLOG MONITOR right: a backup without a position
            return False
        return cursor.fetchone() is not None


def backup_create(*, output_dir: Path, now: dt.datetime | None = None) -> Backup:
    """Dump the live database into OUTPUT_DIR/opd-<db>-<UTC time>.sql.gz and return what it holds.

    The dump is written under a temporary name and renamed when complete, so a file with the final name
    is always a whole backup. With binary logging on (and the BINLOG MONITOR right), the dump records the
    binlog file and position of its snapshot: the starting point of a point-in-time recovery.
    """
    database = live_database()
    now = now or dt.datetime.now(dt.UTC)
    if output_dir.exists() and not output_dir.is_dir():
        raise BackupError(f"{output_dir} is not a directory.")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"opd-{database}-{now:%Y%m%dT%H%M%SZ}.sql.gz"
    if path.exists():
        raise BackupError(f"{path} exists already.")
    dump = _tool("mariadb-dump", "mysqldump")
    binlog = _binlog_enabled()
    partial = path.with_name(path.name + ".partial")
    with _client_options() as options:
        command = [
            dump,
            *options,
            "--single-transaction",
            "--routines",
            "--triggers",
            "--hex-blob",  # binary columns (ciphertext) as hex: no bytes for a terminal or editor to mangle
            "--quick",
            *(["--master-data=2"] if binlog else []),
            database,
        ]
        try:
            with gzip.open(partial, "wb") as out:
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
                assert process.stdout is not None  # noqa: S101 (PIPE asked for)
                shutil.copyfileobj(process.stdout, out, 1 << 20)
                _, err = process.communicate()
            if process.returncode != 0:
                raise BackupError(
                    f"mariadb-dump failed (exit {process.returncode}): {err.decode(errors='replace').strip()}"
                )
            partial.rename(path)
        finally:
            partial.unlink(missing_ok=True)
    binlog_file, position = _binlog_position(path)
    return Backup(path=path, database=database, binlog_file=binlog_file, binlog_position=position)


def _binlog_position(path: Path) -> tuple[str | None, int | None]:
    # --master-data=2 writes the position as a comment in the dump's header.
    binlog_file: str | None = None
    position: int | None = None
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as dump:
        for number, line in enumerate(dump):
            if number > 60:
                break
            if match := BINLOG_POSITION.search(line):
                binlog_file, position = match.group(1), int(match.group(2))
    return binlog_file, position


def _check_backup_file(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"No backup file {path}.")
    with path.open("rb") as raw:
        if raw.read(2) != GZIP_MAGIC:
            raise BackupError(f"{path} is not a gzipped dump (as `manage.py backup` writes).")


def table_counts(database: str) -> dict[str, int]:
    """Exact rows per base table of DATABASE (COUNT(*): information_schema's figures are estimates)."""
    check_database_name(database)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [database],
        )
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            quoted = table.replace("`", "``")
            cursor.execute(f"SELECT COUNT(*) FROM `{database}`.`{quoted}`")  # noqa: S608 (names checked/quoted)
            counts[table] = int(cursor.fetchone()[0])
    return counts


def database_exists(database: str) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [database])
        return cursor.fetchone() is not None


def restore_check(*, path: Path, database: str, force: bool) -> None:
    """Refuse, before anything is written, a restore that would overwrite data without --force."""
    check_database_name(database)
    _check_backup_file(path)
    if force:
        return
    if database == live_database():
        raise BackupError(f"{database} is the live database; restoring over it needs --force.")
    if database_exists(database) and table_counts(database):
        raise BackupError(
            f"Database {database} exists and holds tables; pass --force to replace it, or name another."
        )


def restore_database(*, path: Path, database: str, force: bool) -> Restored:
    """Load the backup at PATH into DATABASE (created; dropped first with --force)."""
    restore_check(path=path, database=database, force=force)
    client = _tool("mariadb", "mysql")
    with connections["default"].cursor() as cursor:
        if force:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(
            f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    restored = Restored(database=database)
    with _client_options() as options:
        process = subprocess.Popen(  # noqa: S603 (the machine's client, fixed arguments)
            [client, *options, database], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdin is not None  # noqa: S101 (PIPE asked for)
        assert process.stderr is not None  # noqa: S101
        unreadable = None
        try:
            with gzip.open(path, "rb") as dump:
                _stream(dump, process.stdin, restored.dump_counts)
        except BrokenPipeError:
            pass  # the client stopped reading: its exit status and message say why
        except (OSError, EOFError) as exc:  # a truncated or corrupt gzip file
            unreadable = exc
            process.kill()
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        err = process.stderr.read()
        process.wait()
    if unreadable is not None:
        raise BackupError(f"{path} could not be read to the end ({unreadable}); {database} is incomplete.")
    if process.returncode != 0:
        raise BackupError(f"Loading {path} into {database} failed: {err.decode(errors='replace').strip()}")
    restored.tables = sorted(table_counts(database))
    return restored


def _stream(dump: Iterable[bytes], sink: IO[bytes], counts: Counter[str]) -> None:
    rows = _RowCounter(counts)
    for line in dump:
        sink.write(line)
        rows.feed(line)


class _RowCounter:
    """Counts the rows of the dump's INSERT statements, line by line as they stream past.

    mariadb-dump (10.11) writes `INSERT INTO `t` VALUES` and then one row per line, `(...),` up to
    `(...);`; older versions put the whole list on the INSERT's line. A string literal never spans lines
    (newlines in values are escaped), so each line can be tokenized on its own.
    """

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self.table: str | None = None
        self.depth = 0

    def feed(self, raw: bytes) -> None:
        if self.table is None:
            if not raw.startswith(b"INSERT "):
                return
            line = raw.decode("utf-8", errors="replace")
            match = INSERT.match(line)
            if not match:
                return
            self.table, self.depth = match.group(1).replace("``", "`"), 0
            line = line[match.end() :]
        else:
            line = raw.decode("utf-8", errors="replace")
        for token in VALUE_TOKEN.finditer(line):
            char = token.group()
            if char == "(":
                self.counts[self.table] += self.depth == 0
                self.depth += 1
            elif char == ")":
                self.depth -= 1
        if self.depth == 0 and line.rstrip().endswith(";"):
            self.table = None


def count_differences(restored: Restored) -> list[str]:
    """Tables whose restored row count differs from the rows the dump holds ([] when all agree)."""
    actual = table_counts(restored.database)
    problems = []
    for table in sorted(set(actual) | set(restored.dump_counts)):
        expected = restored.dump_counts.get(table, 0)
        if table not in actual:
            problems.append(f"{table}: in the dump ({expected} rows) but not restored")
        elif actual[table] != expected:
            problems.append(f"{table}: {expected} rows in the dump, {actual[table]} restored")
    return problems


def audit_verify_in(database: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py audit_verify` against DATABASE in a process of its own (its settings, its key).

    A separate process because the check reads through the default connection: this one keeps pointing
    at the live database. The environment (and so OPD_AUDIT_KEY) is this process's.
    """
    check_database_name(database)
    db = _settings_dict()
    url = (
        f"mysql://{quote(str(db['USER']), safe='')}:{quote(str(db['PASSWORD'] or ''), safe='')}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{database}"
    )
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("REPLICA_DATABASE_URL", None)  # the scratch database has no replica
    return subprocess.run(  # noqa: S603 (this interpreter and this project's manage.py)
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "audit_verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
