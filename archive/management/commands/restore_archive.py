"""Put archived rows back into their live tables."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from archive.models import ArchivedRecord
from archive.services import archival_restore
from opd.core.models import Organization


class Command(BaseCommand):
    help = (
        "Restore archived groups (a root such as an appointment, and every row archived with it) with "
        "their original ids. Choose --model with --id, or --organization, or --all. Rows still past the "
        "retention are archived again by the next nightly run unless the retention is raised."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model", help="Root model as app_label.model_name, for example scheduling.appointment."
        )
        parser.add_argument(
            "--id", dest="ids", action="extend", nargs="+", metavar="ID", help="Root ids (with --model)."
        )
        parser.add_argument("--organization", metavar="SLUG", help="Only this organization's groups.")
        parser.add_argument(
            "--all", dest="everything", action="store_true", help="Everything in the archive."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be restored.")

    def handle(
        self, *args, model=None, ids=None, organization=None, everything=False, dry_run=False, **options
    ):
        if ids and not model:
            raise CommandError("--id needs --model (for example --model scheduling.appointment --id 42).")
        if not (model or organization or everything):
            raise CommandError("Choose what to restore: --model [--id ...], --organization SLUG, or --all.")
        organization_id = None
        if organization:
            organization_id = (
                Organization.objects.filter(slug=organization).values_list("pk", flat=True).first()
            )
            if organization_id is None:
                raise CommandError(f"No organization with slug {organization!r}.")
        if dry_run:
            qs = ArchivedRecord.objects.all()
            if model:
                qs = qs.filter(root_model=model.lower())
            if ids:
                qs = qs.filter(root_pk__in=ids)
            if organization_id is not None:
                qs = qs.filter(organization_id=organization_id)
            groups = qs.values("root_model", "root_pk").distinct().count()
            self.stdout.write(f"{groups} groups, {qs.count()} rows would be restored.")
            return
        try:
            report = archival_restore(root_model=model, root_pks=ids, organization_id=organization_id)
        except IntegrityError as exc:
            raise CommandError(f"Nothing in the failing batch was restored: {exc}") from exc
        self.stdout.write(f"Restored {report.groups} groups, {report.total} rows.")
        for label, count in sorted(report.rows.items()):
            self.stdout.write(f"  {label}: {count}")
