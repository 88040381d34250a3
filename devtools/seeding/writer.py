"""Bulk writing for the generator: multi-row INSERTs from a second thread, and a progress bar."""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import time
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Max, Model

from opd.core import crypto
from opd.core.fields import blind_index_fields, encrypted_fields

UTC = dt.UTC


class Progress:
    """A one-line progress bar on a stream (carriage return, no dependency)."""

    def __init__(self, total: int, label: str, stream=None, width: int = 30):
        self.total, self.label, self.width = max(total, 1), label, width
        # A text stream, or a command's OutputWrapper (whose write takes `ending`).
        self.stream: Any = stream or sys.stdout
        self.started = time.monotonic()
        self._last = 0.0

    def _write(self, text: str) -> None:
        # A management command's stdout (OutputWrapper) ends every write with a newline unless told not to.
        if hasattr(self.stream, "ending"):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()

    def update(self, done: int, extra: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self._write(
            f"\r{self.label} [{bar}] {100 * done / self.total:5.1f}% {extra} {now - self.started:6.1f}s"
        )

    def finish(self, extra: str = "") -> None:
        self.update(self.total, extra, force=True)
        self._write("\n")


def next_id(model: type[Model]) -> int:
    return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1  # type: ignore[attr-defined]  # ours all have it


def naive_utc(value: dt.datetime) -> dt.datetime:
    """Rows are written as naive UTC (what Django stores with USE_TZ); arithmetic on them stays cheap."""
    return value.astimezone(UTC).replace(tzinfo=None)


class Table:
    """Multi-row INSERTs of plain values into one model's table.

    Django's bulk_create spends ~80% of a large insert preparing each value of each model instance
    (measured: 6 s of 6.6 s for 20k rows), and the driver's executemany then spends half of what is
    left quoting each value in Python (measured: 28 s of a 63 s profile). Generated history is already
    clean, so on MySQL/MariaDB a row is turned into its SQL text at once, from a table of formatters by
    type, and a batch goes as a few large INSERTs; elsewhere (the SQLite demo) the driver's executemany
    does it. Columns a row leaves out get the field's Django default; a NOT NULL column without one
    fails loudly in the database.
    """

    STATEMENT_BYTES = 1 << 20  # well under MariaDB's default max_allowed_packet (16 MiB)

    def __init__(self, model: type[Model]):
        self.model = model
        fields = model._meta.concrete_fields
        self.attnames = [f.attname for f in fields]
        self.defaults = [None if f.primary_key else f.get_default() for f in fields]
        quote = connection.ops.quote_name
        # Identifiers from the model's own metadata, quoted; values are parameters or SQL literals.
        self.head = "INSERT INTO {} ({}) VALUES ".format(  # noqa: S608
            quote(model._meta.db_table),
            ", ".join(quote(f.column) for f in fields),  # type: ignore[arg-type]  # concrete: has a column
        )
        self.literals = connection.vendor == "mysql"
        self.rows: list = []
        self.written = 0
        # Encrypted fields are sealed and blind indexes computed here, as a save would: rows written
        # past the ORM must not hold plaintext (the fields refuse to read it back).
        positions = {f.attname: i for i, f in enumerate(fields)}
        self.sealed = [(positions[f.attname], f) for f in encrypted_fields(model)]
        self.indexed = [(positions[f.attname], f) for f in blind_index_fields(model)]

    def add(self, row: dict) -> None:
        values = [row.get(a, d) for a, d in zip(self.attnames, self.defaults, strict=True)]
        for position, index_field in self.indexed:
            values[position] = crypto.blind_index(index_field.kind, row.get(index_field.source) or "")
        for position, field in self.sealed:
            if values[position]:
                values[position] = crypto.encrypt(str(values[position]), field.encryption_context())  # type: ignore[attr-defined]
        if self.literals:
            self.rows.append("(" + ",".join([_LITERAL.get(type(v), _other_literal)(v) for v in values]) + ")")
        else:
            self.rows.append(tuple(values))

    def statements(self) -> list[str]:
        """The buffered rows as INSERT statements of about STATEMENT_BYTES each (literal mode)."""
        statements, chunk, size = [], [], 0
        for text in self.rows:
            chunk.append(text)
            size += len(text) + 1
            if size >= self.STATEMENT_BYTES:
                statements.append(self.head + ",".join(chunk))
                chunk, size = [], 0
        if chunk:
            statements.append(self.head + ",".join(chunk))
        return statements

    def take(self) -> list[tuple[str, list | None]]:
        """The buffered rows as (statement, parameter rows or None) to execute; the buffer empties."""
        if not self.rows:
            return []
        work: list[tuple[str, list | None]]
        if self.literals:
            work = [(statement, None) for statement in self.statements()]
        else:
            work = [(self.head + "(" + ", ".join(["%s"] * len(self.attnames)) + ")", self.rows)]
        self.written += len(self.rows)
        self.rows = []
        return work


def _execute(db, work: list[tuple[str, list | None]]) -> None:
    # The backend's cursor under Django's error translation, not Django's debug cursor: with DEBUG on
    # (as seed_demo runs) that one keeps every statement's text, here megabytes each, in db.queries.
    with db.cursor() as wrapper, db.wrap_database_errors:
        cursor = wrapper.cursor
        for statement, rows in work:
            if rows is None:
                cursor.execute(statement)
            else:
                cursor.executemany(statement, rows)


# MySQL's escapes for a quoted string. Backslashes escape because the connection sets its sql_mode
# (settings: STRICT_TRANS_TABLES, without NO_BACKSLASH_ESCAPES); the client charset is utf8mb4, where
# no multi-byte character hides a quote.
_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"})


def _string_literal(value: str) -> str:
    return "'" + value.translate(_ESCAPES) + "'"


def _datetime_literal(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = naive_utc(value)
    return f"'{value.isoformat(' ')}'"


def _other_literal(value) -> str:
    # Subclasses (text and integer choices): format as the base type, and remember the type.
    for base, literal in ((str, lambda v: _string_literal(str.__str__(v))), (int, int.__repr__)):
        if isinstance(value, base):
            _LITERAL[type(value)] = literal
            return literal(value)
    raise TypeError(f"the seed writer cannot store a {type(value).__name__} ({value!r})")


_LITERAL = {
    type(None): lambda v: "NULL",
    bool: lambda v: "1" if v else "0",
    int: int.__repr__,
    float: float.__repr__,
    Decimal: lambda v: format(v, "f"),
    str: _string_literal,
    dt.datetime: _datetime_literal,
    dt.date: lambda v: f"'{v.isoformat()}'",
}


class Writer:
    """Buffers rows of several tables and inserts them in batches, parents before children.

    On MySQL/MariaDB the batches go to the database from a second thread, on the same connection
    (so inside the caller's transaction, if any), while this one generates the next batch: the driver
    lets go of the GIL while the server works, and the server's share of a seed (about a quarter) then
    overlaps the generation instead of adding to it. One thread and a FIFO keep parents before
    children. Use it as a context manager, or call flush() at the end: after flush() every row is in
    the database and the thread has stopped, so the caller may use the connection again.
    """

    def __init__(self, batch_size: int, *models: type[Model]):
        self.batch_size = batch_size
        self.tables = {model: Table(model) for model in models}
        self.background = connection.vendor == "mysql"
        self._sender: _Sender | None = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
        elif self._sender:
            self._sender.stop(discard=True)  # the caller's error is the one to see
            self._sender = None

    def add(self, model: type[Model], row: dict) -> None:
        table = self.tables[model]
        table.add(row)
        if len(table.rows) >= self.batch_size:
            self._send()

    def _send(self) -> None:
        # Parents first (the order given), so foreign keys always point at rows that exist.
        work = [item for table in self.tables.values() for item in table.take()]
        if not work:
            return
        if not self.background:
            with transaction.atomic():
                _execute(connection, work)
            return
        if self._sender is None:
            self._sender = _Sender(connections[DEFAULT_DB_ALIAS])
        self._sender.send(work)

    def flush(self) -> None:
        """Write every buffered row and wait until the database has them all."""
        self._send()
        if self._sender:
            sender, self._sender = self._sender, None
            sender.finish()

    def count(self, model: type[Model]) -> int:
        table = self.tables[model]
        return table.written + len(table.rows)


class _Sender:
    """A thread executing batches of statements on a connection it borrows from the caller's thread."""

    def __init__(self, db):
        self.db = db
        self.queue: queue.Queue = queue.Queue(maxsize=2)  # batches waiting: bounds the memory held
        self.error: BaseException | None = None
        self.discard = False
        db.inc_thread_sharing()
        self.thread = threading.Thread(target=self._run, name="seed-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (work := self.queue.get()) is not None:
            if self.error is None and not self.discard:  # else drain without writing: send() never blocks
                try:
                    _execute(self.db, work)
                except BaseException as exc:  # handed to the caller's thread
                    self.error = exc

    def send(self, work: list) -> None:
        self._raise()
        self.queue.put(work)

    def stop(self, *, discard: bool = False) -> None:
        self.discard = discard
        self.queue.put(None)
        self.thread.join()
        self.db.dec_thread_sharing()

    def finish(self) -> None:
        self.stop()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
