"""Bulk writing for the generator: multi-row INSERTs of plain tuples, and a progress bar."""

from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Model

UTC = dt.UTC


class Progress:
    """A one-line progress bar on a stream (carriage return, no dependency)."""

    def __init__(self, total: int, label: str, stream=None, width: int = 30):
        self.total, self.label, self.width = max(total, 1), label, width
        self.stream = stream or sys.stdout
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
    return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1


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
            quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
        )
        self.literals = connection.vendor == "mysql"
        self.rows: list = []
        self.written = 0

    def add(self, row: dict) -> None:
        values = [row.get(a, d) for a, d in zip(self.attnames, self.defaults, strict=True)]
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

    def flush(self) -> None:
        if not self.rows:
            return
        with transaction.atomic(), connection.cursor() as cursor:
            if self.literals:
                for statement in self.statements():
                    cursor.execute(statement)
            else:
                cursor.executemany(self.head + "(" + ", ".join(["%s"] * len(self.attnames)) + ")", self.rows)
        self.written += len(self.rows)
        self.rows = []


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
    """Buffers rows of several tables and inserts them in batches, parents before children."""

    def __init__(self, batch_size: int, *models: type[Model]):
        self.batch_size = batch_size
        self.tables = {model: Table(model) for model in models}

    def add(self, model: type[Model], row: dict) -> None:
        table = self.tables[model]
        table.add(row)
        if len(table.rows) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        # Parents first (the order given), so foreign keys always point at rows that exist.
        for table in self.tables.values():
            table.flush()

    def count(self, model: type[Model]) -> int:
        table = self.tables[model]
        return table.written + len(table.rows)
