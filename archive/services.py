"""Archival: old clinical rows move out of the live tables into ArchivedRecord, restorable, never deleted.

Why one archive table and not an `is_archived` flag: a flag (with a default manager hiding archived rows)
would have to live on every archived model, in apps this one must not change (scheduling, consultations),
and the live tables and their indexes would keep growing. Instead rows *move*: in one transaction a batch
of root rows (appointments that ended more than OPD_ARCHIVE_RETENTION_DAYS ago, about 5 years) and every
row that refers to them, recursively, are written to ArchivedRecord with Django's own serialization (the
format of dumpdata/loaddata) and removed from their tables. Restoring writes them back with the same
primary keys and every column as it was (auto_now fields included), and removes the archive rows.

What follows a root is found, not listed: every reverse foreign key (including many-to-many through rows)
of every collected row is followed: an appointment takes its notifications, its consultation and the
consultation's prescriptions (with their lines), results and addenda, and whatever points at them later,
without a change here. A model that is old on its own account and not attached to an archived root (care
notes) is one line in ARCHIVE_ROOTS.

Guarantees:
* Nothing is lost: a batch is one transaction (archive rows written, then live rows deleted, children
  before parents); a failure rolls both back. A row is in the archive at most once (unique model + pk).
* Idempotent: a second run finds no root past the retention, so it changes nothing. Two runs at once take
  disjoint batches (SELECT ... FOR UPDATE SKIP LOCKED on the roots).
* Restorable: `manage.py restore_archive` (archival_restore) re-inserts a group parents first.

Encrypted fields (opd.core.fields) stay encrypted in the archive: their values are sealed again into the
JSON (the serializer would write the plaintext it reads), restore unseals them before the row is saved
(which seals them for the live table), and `manage.py rotate_keys` re-encrypts the archived copies and
their attachment files too (archive_encryption_rotate, registered in archive.apps).

Rows that refer to archived rows only by a plain id (AuditEvent.object_id, IdempotencyRecord) are not
foreign keys and stay where they are. Generic foreign keys are not followed. A restored row is archived
again by the next run if it is still past the retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core import serializers
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from opd.core import crypto
from opd.core.fields import EncryptedMixin, encrypted_fields
from opd.core.services.encryption import file_reseal
from opd.core.storage import EncryptedFileSystemStorage

from . import conf
from .models import ArchivedRecord
from .selectors import unsealed_data

logger = logging.getLogger(__name__)

# Longest chain of references followed from a root; deeper means a reference cycle in the data.
MAX_DEPTH = 12


@dataclass(frozen=True)
class ArchiveRoot:
    """Rows of `model` whose `age_field` is older than the retention are archived with their dependants."""

    model: str
    age_field: str
    condition: Q = field(default_factory=Q)
    organization_field: str = "organization_id"


# Consultations, prescriptions, results and addenda follow their appointment; care notes are their own.
ARCHIVE_ROOTS: list[ArchiveRoot] = [
    ArchiveRoot("scheduling.Appointment", age_field="end"),
    ArchiveRoot("consultations.CareNote", age_field="created_at"),
]


@dataclass
class ArchiveReport:
    groups: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _references_to(model: type[models.Model]) -> Iterator[Any]:  # reverse relations (ForeignObjectRel)
    """Every foreign key (and one-to-one) elsewhere that points at `model`, through tables included."""
    for rel in model._meta.get_fields(include_hidden=True):
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one):
            yield rel


def _collect(
    model: type[models.Model], root_pks: list[Any]
) -> list[tuple[type[models.Model], object, object, int]]:
    """The roots and every row that refers to them, recursively: (model, pk, root pk, depth).

    A row's depth is its longest chain of references from the root, so restoring by ascending depth
    inserts every row after the rows it points at (and deleting by descending depth deletes it first)."""
    depth: dict[tuple[type[models.Model], object], int] = {}
    root_of: dict[tuple[type[models.Model], object], object] = {}
    for pk in root_pks:
        depth[(model, pk)] = 0
        root_of[(model, pk)] = pk
    frontier: dict[type[models.Model], set[Any]] = {model: set(root_pks)}
    level = 0
    while frontier:
        if level >= MAX_DEPTH:
            raise RuntimeError(f"References deeper than {MAX_DEPTH} levels under {_label(model)}: a cycle?")
        found: dict[type[models.Model], set[Any]] = defaultdict(set)
        for parent_model, pks in frontier.items():
            for rel in _references_to(parent_model):
                child_model, fk = rel.related_model, rel.field
                target = fk.target_field
                if target.primary_key:
                    by_value = {pk: pk for pk in pks}
                else:
                    by_value = dict(
                        parent_model._base_manager.filter(pk__in=pks).values_list(target.attname, "pk")
                    )
                rows = child_model._base_manager.filter(**{f"{fk.attname}__in": list(by_value)}).values_list(
                    "pk", fk.attname
                )
                for child_pk, value in rows:
                    key = (child_model, child_pk)
                    depth[key] = level + 1
                    root_of.setdefault(key, root_of[(parent_model, by_value[value])])
                    found[child_model].add(child_pk)
        frontier = found
        level += 1
    return [(m, pk, root_of[(m, pk)], d) for (m, pk), d in depth.items()]


def _serialize(model: type[models.Model], pks: list[Any]) -> dict[object, dict[str, Any]]:
    # Concrete fields only: many-to-many links are archived as rows of their through tables.
    names = [f.name for f in model._meta.concrete_fields if not f.primary_key]
    objects = model._base_manager.filter(pk__in=pks)
    items = {item["pk"]: item for item in serializers.serialize("python", objects, fields=names)}
    sealed = encrypted_fields(model)
    for item in items.values():
        for f in sealed:
            if item["fields"].get(f.name):
                item["fields"][f.name] = crypto.encrypt(item["fields"][f.name], f.encryption_context())  # type: ignore[attr-defined]
    return items


def _archive_batch(root: ArchiveRoot, cutoff: dt.datetime, batch_size: int, report: ArchiveReport) -> int:
    """Move one batch of roots and their dependants. Returns how many roots moved."""
    model = apps.get_model(root.model)
    with transaction.atomic():
        roots = list(
            model._base_manager.select_for_update(skip_locked=True)
            .filter(root.condition, **{f"{root.age_field}__lt": cutoff})
            .order_by("pk")
            .values_list("pk", root.organization_field)[:batch_size]
        )
        if not roots:
            return 0
        organization_of = dict(roots)
        collected = _collect(model, list(organization_of))
        by_model: dict[type[models.Model], list[Any]] = defaultdict(list)
        for row_model, pk, _root_pk, _depth in collected:
            by_model[row_model].append(pk)
        data = {row_model: _serialize(row_model, pks) for row_model, pks in by_model.items()}
        now = timezone.now()
        ArchivedRecord.objects.bulk_create(
            [
                ArchivedRecord(
                    model=_label(row_model),
                    object_pk=str(pk),
                    root_model=_label(model),
                    root_pk=str(root_pk),
                    position=row_depth,
                    organization_id=organization_of[root_pk],
                    data=data[row_model][pk],
                    archived_at=now,
                )
                for row_model, pk, root_pk, row_depth in collected
            ]
        )
        # Deepest first: each row goes before the rows it points at, so PROTECT never objects.
        by_depth: dict[int, dict[type[models.Model], list[Any]]] = defaultdict(lambda: defaultdict(list))
        for row_model, pk, _root_pk, row_depth in collected:
            by_depth[row_depth][row_model].append(pk)
        for row_depth in sorted(by_depth, reverse=True):
            for row_model, pks in by_depth[row_depth].items():
                row_model._base_manager.filter(pk__in=pks).delete()
                report.rows[_label(row_model)] += len(pks)
        report.groups += len(roots)
        return len(roots)


def archival_run(
    *,
    now: dt.datetime | None = None,
    retention_days: int | None = None,
    batch_size: int | None = None,
    max_seconds: float | None = None,
) -> ArchiveReport:
    """Archive every root past the retention, batch by batch (one transaction each). With max_seconds,
    stops between batches once that long has passed; the next run carries on."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=retention_days or conf.retention_days())
    batch_size = batch_size or conf.batch_size()
    started = time.monotonic()
    report = ArchiveReport()
    for root in ARCHIVE_ROOTS:
        while _archive_batch(root, cutoff, batch_size, report) == batch_size:
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                logger.info("archival stopped after %.0f s; the next run continues", max_seconds)
                return report
    return report


def archival_candidates(
    *, now: dt.datetime | None = None, retention_days: int | None = None
) -> dict[str, int]:
    """How many roots of each kind a run would archive now (for --dry-run)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=retention_days or conf.retention_days())
    out = {}
    for root in ARCHIVE_ROOTS:
        model = apps.get_model(root.model)
        out[_label(model)] = model._base_manager.filter(
            root.condition, **{f"{root.age_field}__lt": cutoff}
        ).count()
    return out


def archival_restore(
    *,
    root_model: str | None = None,
    root_pks: list[Any] | None = None,
    organization_id: int | None = None,
    batch_size: int = 200,
) -> ArchiveReport:
    """Put archived groups back in their tables, with their primary keys, and remove them from the archive.

    Select by root model (app_label.model_name), root ids and organization; nothing selected = everything.
    Each batch of groups is one transaction, rows inserted parents first; a row whose primary key is taken
    in the live table makes that batch fail whole, leaving the archive as it was."""
    selection = ArchivedRecord.objects.all()
    if root_model:
        selection = selection.filter(root_model=root_model.lower())
    if root_pks:
        selection = selection.filter(root_pk__in=[str(pk) for pk in root_pks])
    if organization_id is not None:
        selection = selection.filter(organization_id=organization_id)
    report = ArchiveReport()
    while True:
        with transaction.atomic():
            groups = list(
                selection.values_list("root_model", "root_pk")
                .distinct()
                .order_by("root_model", "root_pk")[:batch_size]
            )
            if not groups:
                return report
            in_groups = Q()
            for model_label, pk in groups:
                in_groups |= Q(root_model=model_label, root_pk=pk)
            records = list(
                ArchivedRecord.objects.select_for_update().filter(in_groups).order_by("position", "id")
            )
            for record in records:
                for item in serializers.deserialize("python", [unsealed_data(record.data)]):
                    item.save(force_insert=True)
                report.rows[record.model] += 1
            ArchivedRecord.objects.filter(pk__in=[r.pk for r in records]).delete()
            report.groups += len(groups)


def archive_encryption_rotate(batch_size: int) -> int:
    """Re-encrypt the archived copies of encrypted fields, and archived attachment files, with the current
    key (opd.core.services.encryption.encryption_rotate calls it). Batches of archive rows are locked while
    rewritten; restore and archival take the same locks. Returns how many values and files it rewrote."""
    sealed_models = {
        _label(m): m
        for m in apps.get_models()
        if encrypted_fields(m) or any(isinstance(f, models.FileField) for f in m._meta.concrete_fields)
    }
    rewritten, last = 0, 0
    while True:
        with transaction.atomic():
            records = list(
                ArchivedRecord.objects.select_for_update()
                .filter(pk__gt=last, model__in=list(sealed_models))
                .order_by("pk")[:batch_size]
            )
            if not records:
                return rewritten
            for record in records:
                model = sealed_models[record.model]
                fields, changed = record.data["fields"], False
                for f in model._meta.concrete_fields:
                    value = fields.get(f.name)
                    if not value:
                        continue
                    if isinstance(f, EncryptedMixin) and crypto.needs_rotation(value):
                        context = f.encryption_context()
                        fields[f.name] = crypto.encrypt(crypto.decrypt(value, context), context)
                        rewritten, changed = rewritten + 1, True
                    elif isinstance(f, models.FileField) and isinstance(
                        f.storage, EncryptedFileSystemStorage
                    ):
                        rewritten += file_reseal(f.storage, value)
                if changed:
                    ArchivedRecord.objects.filter(pk=record.pk).update(data=record.data)
            last = records[-1].pk
