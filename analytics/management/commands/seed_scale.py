"""Generate years of realistic history in bulk (see analytics.seeding): for benchmarks and demos at scale."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.seeding import ScaleSpec, seed_scale


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Fill the database with generated history: organizations, clinics, doctors, patients, slots and "
        "appointments, in bulk. Deterministic with --seed. Run it on a database nobody else writes to."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = ScaleSpec()
        parser.add_argument("--organizations", type=_positive, default=defaults.organizations)
        parser.add_argument("--clinics", type=_positive, default=defaults.clinics, help="Per organization.")
        parser.add_argument("--doctors", type=_positive, default=defaults.doctors, help="Per clinic.")
        parser.add_argument("--patients", type=_positive, default=defaults.patients, help="Per organization.")
        parser.add_argument("--days", type=_positive, default=defaults.days, help="Days of history.")
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--batch-size", type=_positive, default=defaults.batch_size)
        parser.add_argument(
            "--until",
            type=dt.date.fromisoformat,
            default=None,
            help="Last day of history, YYYY-MM-DD (default: yesterday).",
        )
        parser.add_argument("--prefix", default=defaults.prefix, help="Slug prefix of the organizations.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        spec = ScaleSpec(
            organizations=options["organizations"],
            clinics=options["clinics"],
            doctors=options["doctors"],
            patients=options["patients"],
            days=options["days"],
            seed=options["seed"],
            batch_size=options["batch_size"],
            until=options["until"],
            prefix=options["prefix"],
        )
        try:
            report = seed_scale(spec, stdout=self.stdout, progress=not options["no_progress"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(report.counts_by_status.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.organizations} organizations, {report.clinics} clinics, {report.departments} "
                f"departments, {report.doctors} doctors, {report.patients:,} patients, {report.slots:,} slots, "
                f"{report.appointments:,} appointments ({statuses}), {report.consultations:,} consultations, "
                f"{report.care_notes:,} care notes in {report.seconds:.1f}s."
            )
        )
