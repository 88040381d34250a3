"""Deliver outbox events their own process did not (opd.core.outbox): the relay outside Celery."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from opd.core.outbox import flush_marks
from opd.core.services.outbox import RELAY_BATCH, outbox_relay_once


class Command(BaseCommand):
    help = (
        "Deliver the domain events still undelivered after OPD_OUTBOX_GRACE_SECONDS, every "
        "OPD_OUTBOX_RELAY_INTERVAL_SECONDS until stopped, or once with --once. "
        "Several relays (this command, the core.outbox_relay beat task) may run side by side."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit.")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        interval = settings.OPD_OUTBOX_RELAY_INTERVAL_SECONDS
        try:
            while True:
                delivered = failed = 0
                while True:
                    report = outbox_relay_once()
                    delivered += report.delivered
                    failed += report.failed
                    # A full batch may have more behind it; an empty or partial one means caught up.
                    if report.delivered + report.failed < RELAY_BATCH:
                        break
                # Events the handlers published themselves were delivered in process: mark them now.
                flush_marks()
                if delivered or failed or once:
                    self.stdout.write(f"outbox relay: {delivered} delivered, {failed} failed")
                if once:
                    return
                close_old_connections()
                time.sleep(interval)
        except KeyboardInterrupt:
            return
