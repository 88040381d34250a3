"""The archive: rows moved out of the live tables, restorable as they were."""

from __future__ import annotations

from django.db import models

from opd.core.json import FullPrecisionJSONEncoder
from opd.core.models import Organization


class ArchivedRecord(models.Model):
    """A row moved out of a live table by the archival job, restorable as it was (archive.services).

    Rows are archived in groups: a root (an appointment older than the retention) and every row that
    refers to it, recursively (its notifications, later its consultation, notes ...). `position` orders a
    group parents first, for restoring; `data` is Django's own serialization of the row (as dumpdata).
    """

    model = models.CharField(max_length=100, help_text="app_label.model_name of the archived row")
    object_pk = models.CharField(max_length=64)
    root_model = models.CharField(max_length=100)
    root_pk = models.CharField(max_length=64)
    position = models.PositiveIntegerField()
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(encoder=FullPrecisionJSONEncoder)
    archived_at = models.DateTimeField()

    class Meta:
        # The table it had when archival lived in notifications: moving the model moved no rows.
        db_table = "notifications_archivedrecord"
        ordering = ["root_model", "root_pk", "position"]
        constraints = [
            # A row is in the archive at most once: two archivers racing cannot both move it.
            models.UniqueConstraint(fields=["model", "object_pk"], name="notifications_archive_row_once"),
        ]
        indexes = [
            models.Index(fields=["root_model", "root_pk", "position"], name="notifications_archive_group"),
            models.Index(fields=["organization", "archived_at"], name="notifications_archive_org"),
        ]

    def __str__(self) -> str:
        return f"{self.model}#{self.object_pk} (archived with {self.root_model}#{self.root_pk})"
