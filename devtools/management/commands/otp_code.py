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
        # The server accepts one step of clock drift either way, so the next step's code (shown when this
        # step's was already used: a code works once) is good at once, until the step after it ends.
        seconds = code.seconds_left + (0 if code.current else device.step)
        self.stdout.write(f"{code.code}  (valid for about {seconds} more seconds)")
