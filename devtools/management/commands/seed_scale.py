"""Generate years of realistic history in bulk (see devtools.seeding): for benchmarks and demos at scale."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.summaries import daily_summaries_refresh_due
from devtools.seeding import ScaleSpec, seed_scale


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


SCALE_OPTIONS = (
    "organizations",
    "clinics",
    "doctors",
    "patients",
    "days",
    "seed",
    "batch_size",
    "until",
    "prefix",
)


def add_scale_arguments(parser: CommandParser, *, suppress_defaults: bool = False) -> None:
    """The scale options; with suppress_defaults an option that is not given is absent from options,
    so a command (seed_demo) can tell whether a scale run was asked for."""
    defaults = ScaleSpec()

    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    parser.add_argument("--organizations", type=_positive, default=default(defaults.organizations))
    parser.add_argument(
        "--clinics", type=_positive, default=default(defaults.clinics), help="Per organization."
    )
    parser.add_argument("--doctors", type=_positive, default=default(defaults.doctors), help="Per clinic.")
    parser.add_argument(
        "--patients", type=_positive, default=default(defaults.patients), help="Per organization."
    )
    parser.add_argument("--days", type=_positive, default=default(defaults.days), help="Days of history.")
    parser.add_argument("--seed", type=int, default=default(defaults.seed))
    parser.add_argument("--batch-size", type=_positive, default=default(defaults.batch_size))
    parser.add_argument(
        "--until",
        type=dt.date.fromisoformat,
        default=default(None),
        help="Last day of history, YYYY-MM-DD (default: yesterday).",
    )
    parser.add_argument(
        "--prefix", default=default(defaults.prefix), help="Slug prefix of the organizations."
    )


def run_scale(command: BaseCommand, options: dict, *, progress: bool = True) -> None:
    spec = ScaleSpec(**{name: options[name] for name in SCALE_OPTIONS if name in options})
    try:
        report = seed_scale(spec, stdout=command.stdout, progress=progress)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(report.counts_by_status.items()))
    command.stdout.write(
        command.style.SUCCESS(
            f"{report.organizations} organizations, {report.clinics} clinics, {report.departments} "
            f"departments, {report.doctors} doctors, {report.patients:,} patients, {report.slots:,} slots, "
            f"{report.appointments:,} appointments ({statuses}), {report.consultations:,} consultations, "
            f"{report.care_notes:,} care notes in {report.seconds:.1f}s."
        )
    )
    # The history was written in bulk, without the events that keep the stored daily figures current:
    # store them now, as beat's refresh would.
    started = time.perf_counter()
    days = daily_summaries_refresh_due()
    command.stdout.write(
        f"Stored the daily figures of {days:,} clinic-days in {time.perf_counter() - started:.1f}s."
    )


class Command(BaseCommand):
    help = (
        "Fill the database with generated history: organizations, clinics, doctors, patients, slots and "
        "appointments, in bulk. Deterministic with --seed. Run it on a database nobody else writes to."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_scale_arguments(parser)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        run_scale(self, options, progress=not options["no_progress"])
