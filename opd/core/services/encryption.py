"""Encryption at rest, the writes: encrypting existing rows (migrations), key rotation, blind-index recompute.

Everything here works in small batches, each its own short transaction, and writes a value only if the
row still holds what was read (compare-and-set): the application keeps running, and a value it writes
meanwhile (sealed with the current key already) is left alone. Running any of it twice does nothing the
second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps
from django.db import connection, models, transaction

from .. import crypto
from ..fields import blind_index_fields, encrypted_fields
from ..storage import EncryptedFileSystemStorage

BATCH_SIZE = 500

# Copies of encrypted values kept elsewhere (the archive's JSON): each hook re-encrypts its copies with
# the current key and returns how many values it rewrote. Registered by the app that owns the copies
# (archive.apps), since opd.core may not import it.
RotationHook = Callable[[int], int]
ROTATION_HOOKS: dict[str, RotationHook] = {}


def register_rotation_hook(name: str, hook: RotationHook) -> None:
    ROTATION_HOOKS[name] = hook


@dataclass
class RotationReport:
    values: dict[str, int] = field(default_factory=dict)  # "app.model.field" -> values re-encrypted
    files: int = 0
    copies: dict[str, int] = field(default_factory=dict)  # hook name -> copies re-encrypted
    not_encrypted: dict[str, int] = field(default_factory=dict)  # values that are not tokens: left alone
    blind_indexes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.values.values()) + self.files + sum(self.copies.values())


def _pk_batches(table: str, pk: str, columns: list[str], batch_size: int) -> Iterable[list[tuple]]:
    quote = connection.ops.quote_name
    cols = ", ".join(quote(c) for c in columns)
    # Identifiers from model metadata, quoted; values are parameters.
    select = (
        f"SELECT {quote(pk)}, {cols} FROM {quote(table)} WHERE {quote(pk)} > %s ORDER BY {quote(pk)} LIMIT %s"  # noqa: S608
    )
    last: Any = -1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(select, [last, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _compare_and_set(table: str, pk: str, pk_value: Any, column: str, old: Any, new: Any) -> int:
    quote = connection.ops.quote_name
    # Identifiers from model metadata, quoted; values are parameters.
    sql = f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(pk)} = %s AND {quote(column)} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [new, pk_value, old])
        return cursor.rowcount


def _rewrite_columns(
    model: type[models.Model],
    columns: dict[str, str],  # column -> encryption context
    transform: Callable[[str, str], str | None],  # (value, context) -> new value, or None to leave it
    batch_size: int,
    counts: dict[str, int],
) -> None:
    table, pk = model._meta.db_table, str(model._meta.pk.column)
    names = list(columns)
    for rows in _pk_batches(table, pk, names, batch_size):
        with transaction.atomic():
            for row in rows:
                for column, value in zip(names, row[1:], strict=True):
                    if not value:
                        continue
                    new = transform(value, columns[column])
                    if new is not None and new != value:
                        counts[column] = counts.get(column, 0) + _compare_and_set(
                            table, pk, row[0], column, value, new
                        )


# Data migrations: encrypt (or, going back, decrypt) the existing rows of given columns.
def migrate_encrypt_columns(
    apps: Any, schema_editor: Any, label: str, field_names: list[str], *, batch_size: int = BATCH_SIZE
) -> None:
    model = apps.get_model(label)
    context = {str(model._meta.get_field(n).column): f"{model._meta.label_lower}.{n}" for n in field_names}

    def seal(value: str, ctx: str) -> str | None:
        return None if crypto.token_key_id(value) else crypto.encrypt(value, ctx)

    _rewrite_columns(model, context, seal, batch_size, {})


def migrate_decrypt_columns(
    apps: Any, schema_editor: Any, label: str, field_names: list[str], *, batch_size: int = BATCH_SIZE
) -> None:
    model = apps.get_model(label)
    context = {str(model._meta.get_field(n).column): f"{model._meta.label_lower}.{n}" for n in field_names}

    def unseal(value: str, ctx: str) -> str | None:
        return crypto.decrypt(value, ctx) if crypto.token_key_id(value) else None

    _rewrite_columns(model, context, unseal, batch_size, {})


def _encrypted_models() -> list[type[models.Model]]:
    return [m for m in global_apps.get_models() if encrypted_fields(m) or _encrypted_file_fields(m)]


def _encrypted_file_fields(model: type[models.Model]) -> list[models.FileField]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.FileField) and isinstance(f.storage, EncryptedFileSystemStorage)
    ]


def encryption_rotate(*, batch_size: int = BATCH_SIZE) -> RotationReport:
    """Re-encrypt every encrypted column, attachment file and archived copy not under the current key.

    Afterwards the keys after the first in OPD_ENCRYPTION_KEYS decrypt nothing and can be dropped. Files
    that predate encryption are encrypted; column values that are not tokens are counted, not touched
    (the field refuses to read them: someone wrote them past the application)."""
    report = RotationReport()
    for model in _encrypted_models():
        fields = encrypted_fields(model)
        columns = {str(f.column): f.encryption_context() for f in fields}  # type: ignore[attr-defined]
        label = model._meta.label_lower
        counts: dict[str, int] = {}

        def reseal(value: str, ctx: str, label: str = label) -> str | None:
            if crypto.token_key_id(value) is None:
                report.not_encrypted[label] = report.not_encrypted.get(label, 0) + 1
                return None
            return crypto.encrypt(crypto.decrypt(value, ctx), ctx) if crypto.needs_rotation(value) else None

        if columns:
            _rewrite_columns(model, columns, reseal, batch_size, counts)
        for f in fields:
            report.values[f"{label}.{f.name}"] = counts.get(str(f.column), 0)
        for file_field in _encrypted_file_fields(model):
            report.files += _rotate_files(model, file_field, batch_size)
    for name, hook in ROTATION_HOOKS.items():
        report.copies[name] = hook(batch_size)
    return report


def file_needs_sealing(blob: bytes) -> bool:
    kid = crypto.blob_key_id(blob)
    return kid is None or kid != crypto.keyring().current_id


def file_reseal(storage: EncryptedFileSystemStorage, name: str) -> bool:
    """Encrypt a plain file, or re-encrypt one under an older key, in place. True if it was rewritten."""
    try:
        blob = storage.read_raw(name)
    except FileNotFoundError:
        return False
    if not file_needs_sealing(blob):
        return False
    plain = blob if crypto.blob_key_id(blob) is None else crypto.decrypt_bytes(blob, name)
    storage.rewrite(name, crypto.encrypt_bytes(plain))
    return True


def _rotate_files(model: type[models.Model], file_field: models.FileField, batch_size: int) -> int:
    storage = file_field.storage
    if not isinstance(storage, EncryptedFileSystemStorage):  # _encrypted_file_fields chose it for that
        return 0
    rewritten, last = 0, None
    manager = model._base_manager
    while True:
        qs = manager.exclude(**{file_field.name: ""}).order_by("pk")
        if last is not None:
            qs = qs.filter(pk__gt=last)
        batch = list(qs.values_list("pk", file_field.attname)[:batch_size])
        if not batch:
            return rewritten
        for _pk, name in batch:
            rewritten += file_reseal(storage, name)
        last = batch[-1][0]


def blind_index_recompute(*, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Recompute every blind index with the current OPD_BLIND_INDEX_KEY, from the decrypted source values.

    The previous key (OPD_BLIND_INDEX_KEY_PREVIOUS) is not needed to recompute: searches use it, so rows
    not yet recomputed are still found while this runs. Remove it once this has finished."""
    counts: dict[str, int] = {}
    for model in global_apps.get_models():
        index_fields = blind_index_fields(model)
        if not index_fields:
            continue
        table, pk = model._meta.db_table, str(model._meta.pk.column)
        sources = {f.source for f in index_fields}
        last: Any = None
        while True:
            qs = model._base_manager.order_by("pk")
            if last is not None:
                qs = qs.filter(pk__gt=last)
            rows = list(qs.values_list("pk", *sources, *(f.attname for f in index_fields))[:batch_size])
            if not rows:
                break
            with transaction.atomic():
                for row in rows:
                    values = dict(zip([*sources, *(f.attname for f in index_fields)], row[1:], strict=True))
                    for f in index_fields:
                        new = crypto.blind_index(f.kind, values[f.source] or "")
                        if new != values[f.attname]:
                            key = f"{model._meta.label_lower}.{f.name}"
                            counts[key] = counts.get(key, 0) + _compare_and_set(
                                table, pk, row[0], str(f.column), values[f.attname], new
                            )
            last = rows[-1][0]
    return counts
