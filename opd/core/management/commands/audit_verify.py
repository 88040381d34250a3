"""Verify the audit trail's hash chains (beat runs the same check daily and mails the admins)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opd.core.models import Organization
from opd.core.services.audit_chain import NO_ORGANIZATION, audit_verify


class Command(BaseCommand):
    help = (
        "Seal pending audit events, then walk each organization's hash chain and name the first altered, "
        "deleted or inserted event. Exit status 1 when any chain fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--organization",
            help="Only this organization's chain (its id or slug; 0 or 'none': events without one).",
        )

    def handle(self, *args, organization: str | None = None, **options) -> None:
        chains = None
        if organization is not None:
            chains = [self._chain(organization)]
        if settings.OPD_AUDIT_KEY_IS_DEVELOPMENT:
            self.stderr.write(
                "Warning: OPD_AUDIT_KEY is unset; the development key is public, so this proves nothing."
            )
        names = dict(Organization.objects.values_list("pk", "name"))
        failed = 0
        for report in audit_verify(chains=chains):
            who = names.get(report.chain, "events without an organization")
            if report.ok:
                self.stdout.write(f"OK      {who} (chain {report.chain}): {report.seals} events chained")
                continue
            failed += 1
            self.stdout.write(f"FAILED  {who} (chain {report.chain}), after {report.seals} good events:")
            for problem in report.problems:
                self.stdout.write(f"        {problem.kind}: {problem.message}")
        if failed:
            raise CommandError(f"The audit trail failed verification in {failed} chain(s).", returncode=1)
        self.stdout.write("The audit trail verified.")

    def _chain(self, value: str) -> int:
        if value.lower() in {"0", "none"}:
            return NO_ORGANIZATION
        found = Organization.objects.filter(slug=value).values_list("pk", flat=True).first()
        if found is None and value.isdigit():
            found = Organization.objects.filter(pk=int(value)).values_list("pk", flat=True).first()
        if found is None:
            raise CommandError(f"No organization {value!r}.")
        return found
