"""Bring future slots in line with doctors' availability (run daily by beat, or by hand)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scheduling.models import Doctor
from scheduling.services import slots_generate

MAX_DAYS = 366


class Command(BaseCommand):
    help = (
        "Create, reopen, resize and close future slots so they match each doctor's weekly availability "
        "and exceptions. Safe to run any number of times: a second run creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"How many days ahead to plan (0-{MAX_DAYS}; default OPD_SLOT_HORIZON_DAYS).",
        )
        parser.add_argument(
            "--doctor",
            dest="doctors",
            type=int,
            nargs="+",
            action="extend",
            metavar="ID",
            help="Only these doctors (ids; repeatable). Default: every doctor.",
        )
        parser.add_argument(
            "--from", dest="start_date", metavar="YYYY-MM-DD", help="First day to plan (default: today, UTC)."
        )

    def handle(self, *args, days=None, doctors=None, start_date=None, **options) -> None:
        days = self._days(days)
        start = self._start_date(start_date) or timezone.now().date()
        queryset = self._doctors(doctors)

        report = slots_generate(days=days, start_date=start, doctors=queryset)

        self.stdout.write(
            f"Planned {report.doctors} doctor(s), {days} day(s) from {start:%Y-%m-%d}: "
            f"created {report.created}, reactivated {report.reactivated}, "
            f"deactivated {report.deactivated}, resized {report.resized}."
        )
        if report.kept_with_bookings:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(report.kept_with_bookings)} closed slot(s) still hold appointments "
                    f"for staff to move: {', '.join(map(str, report.kept_with_bookings))}"
                )
            )

    # Each check runs before anything is written, so a bad argument leaves the database untouched.

    def _days(self, value) -> int:
        if value is None:
            return settings.OPD_SLOT_HORIZON_DAYS
        try:
            days = int(value)
        except (TypeError, ValueError):
            raise CommandError(f"--days must be a whole number, not {value!r}.") from None
        if not 0 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 0 and {MAX_DAYS}, not {days}.")
        return days

    def _start_date(self, value) -> dt.date | None:
        if value is None or isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise CommandError(f"--from must be a date as YYYY-MM-DD, not {value!r}.") from None

    def _doctors(self, ids):
        if not ids:
            return None
        try:
            wanted = {int(i) for i in ids}
        except (TypeError, ValueError):
            raise CommandError(f"--doctor takes doctor ids (numbers), not {ids!r}.") from None
        found = set(Doctor.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        missing = sorted(wanted - found)
        if missing:
            raise CommandError(f"No doctor with id {', '.join(map(str, missing))}; nothing was changed.")
        return Doctor.objects.filter(pk__in=wanted)
