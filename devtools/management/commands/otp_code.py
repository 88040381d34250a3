"""Print the current second-factor code of a (demo) account, as its authenticator app would show it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from devtools.authenticator import code_for


class Command(BaseCommand):
    help = (
        "Print the code the account's authenticator app would show now, for signing in to the demo "
        "without a phone. A development tool: production settings do not install it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None:
            raise CommandError(f"“{username}” has no authenticator enrolled (or no such account).")
        code = code_for(device)
        if code.current:
            self.stdout.write(f"{code.code}  (valid for {code.seconds_left} more seconds)")
        else:
            self.stdout.write(
                f"{code.code}  (this step's code was just used; this one works in {code.seconds_left} seconds)"
            )
