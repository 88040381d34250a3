"""List patients whose phone numbers are not in E.164 (#17): the ones the data migration could not read
and left as typed, and any written since by a path that skipped the patient services."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from opd.core.models import Clinic, Organization
from patients.models import Patient
from patients.phones import plan_phone_numbers


class Command(BaseCommand):
    help = (
        "List patients (MRN, organization, field) whose phone number cannot be read as a phone number, "
        "so reception can correct them in the admin. Numbers themselves are not printed. Exit status 1 "
        "when any is found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Also list readable numbers still stored as typed."
        )

    def handle(self, *args, all: bool = False, **options) -> None:
        names = dict(Organization.objects.values_list("pk", "slug"))
        unreadable = as_typed = 0
        for plan in plan_phone_numbers(Patient, Clinic):
            organization = names.get(plan.organization_id, plan.organization_id)
            for name in plan.unreadable:
                unreadable += 1
                self.stdout.write(f"UNREADABLE  {plan.mrn}  {organization}  {name}")
            if all:
                for name in plan.updates:
                    if name != "phone_index":
                        as_typed += 1
                        self.stdout.write(f"AS TYPED    {plan.mrn}  {organization}  {name}")
        summary = f"{unreadable} unreadable phone numbers"
        if all:
            summary += f", {as_typed} readable numbers not in E.164"
        self.stdout.write(summary + ".")
        if unreadable:
            raise SystemExit(1)
