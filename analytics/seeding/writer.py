"""Bulk writing for the generator: multi-row INSERTs of plain tuples, and a progress bar."""

from __future__ import annotations

import datetime as dt
import sys
import time

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
    """Multi-row INSERTs of plain tuples into one model's table.

    Django's bulk_create spends ~80% of a large insert preparing each value of each model instance
    (measured: 6 s of 6.6 s for 20k rows); generated history is already clean, so rows are dicts of
    column values turned into tuples in the table's column order, and the driver's executemany sends
    them as multi-row INSERTs. Columns a row leaves out get the field's Django default; a NOT NULL
    column without one fails loudly in the database.
    """

    def __init__(self, model: type[Model]):
        self.model = model
        fields = model._meta.concrete_fields
        self.attnames = [f.attname for f in fields]
        self.defaults = [None if f.primary_key else f.get_default() for f in fields]
        quote = connection.ops.quote_name
        # Identifiers from the model's own metadata, quoted; every value is a driver parameter.
        self.sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
            quote(model._meta.db_table),
            ", ".join(quote(f.column) for f in fields),
            ", ".join(["%s"] * len(fields)),
        )
        self.rows: list[tuple] = []
        self.written = 0

    def add(self, row: dict) -> None:
        self.rows.append(tuple([row.get(a, d) for a, d in zip(self.attnames, self.defaults, strict=True)]))

    def flush(self) -> None:
        if self.rows:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(self.sql, self.rows)
            self.written += len(self.rows)
            self.rows = []


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
