"""Store the daily figures of closed days now (beat's analytics.refresh_summaries does it every ten
minutes): after loading history in bulk, or to rebuild a range after repairing data by hand."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.summaries import daily_summaries_refresh, daily_summaries_refresh_due
from opd.core.errors import DomainError
from opd.core.models import Clinic


class Command(BaseCommand):
    help = (
        "Store the daily statistics of closed days that have none or changed since (all clinics, or "
        "--clinic). With --date-from/--date-to, recompute that range even where it is current."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clinic", type=int, action="append", dest="clinics", help="Clinic id (repeatable)."
        )
        parser.add_argument("--date-from", type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--date-to", type=dt.date.fromisoformat, help="YYYY-MM-DD")

    def handle(self, *args, clinics=None, date_from=None, date_to=None, **options) -> None:
        if clinics:
            known = set(Clinic.objects.filter(pk__in=clinics).values_list("pk", flat=True))
            unknown = sorted(set(clinics) - known)
            if unknown:
                raise CommandError(f"--clinic: unknown clinic {', '.join(map(str, unknown))}.")
        if (date_from is None) != (date_to is None):
            raise CommandError("--date-from and --date-to go together.")
        if date_from is not None and date_from > date_to:
            raise CommandError("--date-from is after --date-to.")
        started = time.perf_counter()
        if date_from is None:
            days = daily_summaries_refresh_due(clinic_ids=clinics)
        else:
            days = 0
            for clinic_id in clinics or Clinic.objects.order_by("pk").values_list("pk", flat=True):
                try:
                    days += daily_summaries_refresh(clinic_id=clinic_id, date_from=date_from, date_to=date_to)
                except DomainError as exc:
                    raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Stored the daily figures of {days:,} clinic-days in {time.perf_counter() - started:.1f}s."
        )
