"""Database helpers shared by services."""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast, overload

from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    router,
    transaction,
)
from django.db.models import F, Field, Model, signals
from django.utils import timezone

from .errors import Conflict

T = TypeVar("T")
P = ParamSpec("P")
ModelT = TypeVar("ModelT", bound=Model)

# MySQL/MariaDB: 1213 deadlock (InnoDB rolled the whole transaction back), 1205 lock wait timeout.
RETRYABLE_ERRORS = {1213, 1205}


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and bool(exc.args) and exc.args[0] in RETRYABLE_ERRORS


# MySQL/MariaDB client errors that mean the server cannot be reached right now (restarting, failing
# over, a network cut): 2002/2003 cannot connect, 2006 gone away, 2013 lost during a query, 1053 and 1927
# shutting down or killed, 4031 disconnected by the server. The request wrote nothing it can keep; the
# connection is dropped at the end of the request (CONN_HEALTH_CHECKS) and the next one reconnects.
UNREACHABLE_ERRORS = {1053, 1927, 2002, 2003, 2006, 2013, 4031}


def is_database_unreachable(exc: BaseException | None) -> bool:
    if isinstance(exc, InterfaceError):
        return True  # the driver's handle was already closed under us (the server went away before)
    return isinstance(exc, OperationalError) and bool(exc.args) and exc.args[0] in UNREACHABLE_ERRORS


@overload
def retry_on_deadlock(func: Callable[P, T], *, attempts: int = 5) -> Callable[P, T]: ...
@overload
def retry_on_deadlock(
    func: None = None, *, attempts: int = 5
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...
def retry_on_deadlock(
    func: Callable[P, T] | None = None, *, attempts: int = 5
) -> Callable[P, T] | Callable[[Callable[P, T]], Callable[P, T]]:
    """Run a transactional function again when InnoDB chose it as a deadlock victim.

    InnoDB resolves a lock cycle by rolling back one whole transaction and expects the application
    to retry. Only the outermost transaction can retry, so inside an open atomic block the error
    goes up unchanged; at the top, a retry that keeps failing becomes a 409 that wrote nothing.
    """

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            if connection.in_atomic_block:
                return fn(*args, **kwargs)
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not is_retryable(exc):
                        raise
                    if attempt == attempts:
                        raise Conflict(
                            "The clinic's booking system is busy; nothing was changed. Please try again.",
                            code="busy",
                        ) from exc
                    time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 (jitter, not security)
            raise AssertionError("unreachable")

        return wrapper

    return decorate(func) if func is not None else decorate


def next_in_sequence(model: type[Model], **key: Any) -> int:
    """Take the next number of a counter row (`last_value`) identified by `key`, creating it at 1.

    One UPDATE takes the row's exclusive lock at once and holds it until commit, so two callers never
    get the same number. (get_or_create + SELECT FOR UPDATE would take a shared lock first and deadlock
    when two callers upgrade together.) Two callers creating the same row race on its unique key: the
    loser catches IntegrityError and bumps the winner's row. Call it inside the caller's transaction.
    """
    # Sequence models keep Django's default manager; type[Model] does not declare one.
    rows = model.objects.filter(**key)  # type: ignore[attr-defined]
    if not rows.update(last_value=F("last_value") + 1):
        try:
            with transaction.atomic():
                model.objects.create(**key, last_value=1)  # type: ignore[attr-defined]
        except IntegrityError:
            rows.update(last_value=F("last_value") + 1)
    return rows.values_list("last_value", flat=True).get()


# A door whose outermost transaction rolls back whole on any error marks it; a service's own atomic block
# directly inside it then needs no savepoint (two round trips on the booking path) because nothing between
# them catches an error and carries on. Deeper blocks, and every other caller, keep their savepoint.
_WHOLE_AT = "_opd_whole_transaction_depth"


@contextmanager
def whole_transaction() -> Iterator[None]:
    """The outermost transaction of a door that lets every error escape and roll it all back (the API's
    write actions: opd.core.idempotency)."""
    with transaction.atomic():
        previous = getattr(connection, _WHOLE_AT, None)
        setattr(connection, _WHOLE_AT, len(connection.atomic_blocks))
        try:
            yield
        finally:
            setattr(connection, _WHOLE_AT, previous)


def service_atomic() -> transaction.Atomic:
    """`transaction.atomic()` for a service: a savepoint when nested, unless the block directly around it
    is a whole_transaction()."""
    nested_in_whole = connection.in_atomic_block and getattr(connection, _WHOLE_AT, None) == len(
        connection.atomic_blocks
    )
    return transaction.atomic(savepoint=not nested_in_whole)


# Instances from a hand-written statement's columns (the booking path's one locking read): the fields given
# are loaded, any other is deferred and loads on first access like any deferred field.


def column_of(field: Field) -> str:
    return cast(str, field.column)  # a concrete field always has one


class ColumnLoader:
    """Instances of `model` from the values a database driver returned for `fields`' columns, with
    Django's converters applied (the same instances a queryset would build). Which converters apply is
    looked up once per database vendor: on a request's hot path that lookup cost more than the
    conversion. Fields not given are deferred and load on first access, like any deferred field."""

    def __init__(self, model: type[Model], fields: Sequence[Field]) -> None:
        self.model = model
        self.fields = tuple(fields)
        self.attnames = [f.attname for f in self.fields]
        self._plans: dict[str, list[tuple[int, Any, list[Callable[..., Any]]]]] = {}

    def _plan(self, db: Any) -> list[tuple[int, Any, list[Callable[..., Any]]]]:
        plan = self._plans.get(db.vendor)
        if plan is None:
            plan = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                converters = db.ops.get_db_converters(col) + field.get_db_converters(db)
                if converters:
                    plan.append((index, col, converters))
            self._plans[db.vendor] = plan
        return plan

    def load(self, values: Sequence[Any]) -> Any:
        if len(values) != len(self.fields):
            raise ValueError(f"{len(values)} values for {len(self.fields)} fields of {self.model.__name__}")
        db = connections[DEFAULT_DB_ALIAS]  # the connection object itself, not the per-access proxy
        loaded = list(values)
        for index, col, converters in self._plan(db):
            value = loaded[index]
            for convert in converters:
                value = convert(value, col, db)
            loaded[index] = value
        return self.model.from_db(db.alias, self.attnames, loaded)


def columns_sql(fields: Sequence[Field], alias: str) -> str:
    """`alias.column, ...` for a hand-written SELECT whose row a ColumnLoader builds."""
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(column_of(f))}" for f in fields)


def json_object_sql(fields: Sequence[Field], alias: str, prefix: str = "") -> str:
    """JSON_OBJECT('attname', alias.column, ...): MariaDB, MySQL and SQLite spell it alike."""
    qn = connection.ops.quote_name
    pairs = ", ".join(f"'{prefix}{f.attname}', {alias}.{qn(column_of(f))}" for f in fields)
    return f"JSON_OBJECT({pairs})"


def instance_from_json(
    model: type[ModelT], fields: Sequence[Field], data: str | dict, prefix: str = ""
) -> ModelT:
    """A JSON_OBJECT's values (strings for dates and times, 0/1 for booleans) back into field values."""
    loaded = json.loads(data) if isinstance(data, str) else data
    values = []
    for field in fields:
        value = field.to_python(loaded[prefix + field.attname])
        if isinstance(value, dt.datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)  # stored in UTC, as every datetime here
        values.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], values)


# Rows written without the ORM's per-call SQL compilation (the booking path's INSERTs and its seat UPDATE).


# Values that are never expressions (RowWriter._prep).
_PLAIN_VALUES = frozenset({type(None), bool, int, float, str, dt.datetime, dt.date, dict, list})


class RowWriter:
    """`Model.save()`'s INSERT (and `save(update_fields=fields)`'s UPDATE) of `model`'s rows, with the SQL
    text built once per database vendor from the model's metadata instead of compiled on every call: on
    the booking path that compilation cost more CPU than the statements' round trips.

    Values go through the same steps as in save(): each field's `pre_save(obj, add)` (auto_now,
    auto_now_add, blind indexes) and `get_db_prep_save(value, connection)` (encryption, JSON, dates), on
    the connection the router names for writes. pre_save and post_save are sent as save() sends them (a
    signal without receivers costs a dictionary lookup), the transaction is marked for rollback on an error
    as save() marks it, and the row's id comes from the driver (cursor.lastrowid), not a read back. Only
    what this needs is supported (MariaDB/MySQL and SQLite; plain concrete fields, values not expressions);
    anything else is refused loudly rather than written differently from save().

    `fields`: the names (as in update_fields) `update()` writes; without them the writer only inserts."""

    def __init__(self, model: type[Model], fields: Sequence[str] | None = None) -> None:
        meta = model._meta
        if meta.parents or meta.proxy or meta.order_with_respect_to or meta.select_on_save:
            raise ValueError(f"RowWriter does not write {model.__name__}: save() does more for it.")
        if [f.attname for f in meta.db_returning_fields] != [meta.pk.attname]:
            raise ValueError(f"RowWriter does not write {model.__name__}: it returns more than its id.")
        for field in meta.local_concrete_fields:
            if field.generated or field.has_db_default() or hasattr(field, "get_placeholder"):
                raise ValueError(f"RowWriter does not write {model.__name__}.{field.name}.")
        self.model = model
        self.pk = meta.pk
        self.auto_pk = meta.auto_field is meta.pk
        self.insert_fields = tuple(f for f in meta.local_concrete_fields if f is not meta.pk)
        self.update_fields: frozenset[str] | None = None
        self.updated: tuple[Field, ...] = ()
        if fields is not None:
            names = frozenset(fields)
            unknown = names.difference(meta._non_pk_concrete_field_names)  # type: ignore[attr-defined]
            if not names or unknown:
                raise ValueError(f"Cannot update {model.__name__} fields {sorted(unknown) or 'none'}.")
            self.update_fields = names
            self.updated = tuple(f for f in self.insert_fields if f.name in names or f.attname in names)
        self._sql: dict[tuple[str, str], str] = {}

    def _statement(self, db: Any, kind: str) -> str:
        sql = self._sql.get((db.vendor, kind))
        if sql is None:
            if db.vendor not in ("mysql", "sqlite"):
                raise NotImplementedError(f"RowWriter has not been checked on {db.vendor}.")
            qn = db.ops.quote_name
            table = qn(self.model._meta.db_table)
            if kind == "update":
                assigned = ", ".join(f"{qn(column_of(f))} = %s" for f in self.updated)
                sql = f"UPDATE {table} SET {assigned} WHERE {table}.{qn(column_of(self.pk))} = %s"  # noqa: S608
            else:
                fields = self.insert_fields if kind == "insert" else (self.pk, *self.insert_fields)
                columns = ", ".join(qn(column_of(f)) for f in fields)
                sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
            self._sql[(db.vendor, kind)] = sql
        return sql

    @staticmethod
    def _prep(field: Field, value: Any, db: Any) -> Any:
        # The common types first: hasattr() on a value that lacks the attribute raises inside, which cost
        # more than the conversion.
        if type(value) not in _PLAIN_VALUES and hasattr(value, "resolve_expression"):
            raise TypeError(f"RowWriter writes values, not expressions ({field.name}).")
        return field.get_db_prep_save(value, connection=db)

    def insert(self, obj: ModelT, *, using: str | None = None) -> ModelT:
        """`obj.save(force_insert=True)`: one INSERT of every column; sets the id."""
        if self.update_fields is not None:
            raise ValueError("This RowWriter updates fields; make one without fields to insert.")
        obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
        using = using or router.db_for_write(self.model, instance=obj)
        db = connections[using]
        cls = type(obj)
        signals.pre_save.send(sender=cls, instance=obj, raw=False, using=using, update_fields=None)
        pk_value = obj.pk
        if pk_value is None:
            pk_value = self.pk.get_pk_value_on_save(obj)
            setattr(obj, self.pk.attname, pk_value)
        with transaction.mark_for_rollback_on_error(using=using):
            params = [self._prep(f, f.pre_save(obj, True), db) for f in self.insert_fields]
            if pk_value is None and self.auto_pk:
                sql = self._statement(db, "insert")
            else:
                sql = self._statement(db, "insert_with_pk")
                params.insert(0, self._prep(self.pk, self.pk.pre_save(obj, True), db))
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                if pk_value is None:
                    pk_value = db.ops.last_insert_id(cursor, self.model._meta.db_table, column_of(self.pk))
        setattr(obj, self.pk.attname, pk_value)
        obj._state.db, obj._state.adding = using, False
        signals.post_save.send(
            sender=cls, instance=obj, created=True, update_fields=None, raw=False, using=using
        )
        return obj

    def update(self, obj: ModelT, *, using: str | None = None) -> ModelT:
        """`obj.save(update_fields=fields)`: one UPDATE of those columns by id."""
        if self.update_fields is None:
            raise ValueError("This RowWriter only inserts; make one with the fields to update.")
        obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
        using = using or router.db_for_write(self.model, instance=obj)
        db = connections[using]
        cls = type(obj)
        pk_value = obj.pk
        if pk_value is None:
            raise ValueError("Cannot force an update in save() with no primary key.")
        signals.pre_save.send(
            sender=cls, instance=obj, raw=False, using=using, update_fields=self.update_fields
        )
        with transaction.mark_for_rollback_on_error(using=using):
            params = [self._prep(f, f.pre_save(obj, False), db) for f in self.updated]
            params.append(self.pk.get_db_prep_value(pk_value, db))
            with db.cursor() as cursor:
                cursor.execute(self._statement(db, "update"), params)
                if cursor.rowcount < 1:
                    raise DatabaseError("Save with update_fields did not affect any rows.")
        obj._state.db, obj._state.adding = using, False
        signals.post_save.send(
            sender=cls, instance=obj, created=False, update_fields=self.update_fields, raw=False, using=using
        )
        return obj
