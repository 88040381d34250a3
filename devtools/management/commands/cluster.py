"""`manage.py cluster` (what `make cluster` runs): nginx, two gunicorn and two ASGI nodes, a Celery worker
and a beat per node, supervised until Ctrl-C or SIGTERM (devtools.cluster)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.cluster import Layout, Supervisor


class Command(BaseCommand):
    help = "Run the several-node layout on loopback ports behind nginx until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--base-port", type=int, default=8000, help="nginx; gunicorn +10 and +11, ASGI +20 and +21"
        )
        parser.add_argument("--folder", default=str(settings.BASE_DIR / ".data" / "cluster"))
        parser.add_argument("--gunicorn-workers", type=int, default=2)
        parser.add_argument("--celery-concurrency", type=int, default=2)
        parser.add_argument("--no-celery", action="store_true", help="No Celery workers (nor beat).")
        parser.add_argument("--no-beat", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        if not settings.REDIS_URL or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.mysql":
            raise CommandError("The cluster shares MariaDB and Redis: set DATABASE_URL and REDIS_URL.")
        layout = Layout(
            folder=Path(str(options["folder"])).resolve(),
            host=str(options["host"]),
            base=int(str(options["base_port"])),
            gunicorn_workers=int(str(options["gunicorn_workers"])),
            celery_concurrency=int(str(options["celery_concurrency"])),
            celery=not options["no_celery"],
            beat=not (options["no_celery"] or options["no_beat"]),
        )
        code = Supervisor(layout, say=self._say).run()
        if code:
            raise CommandError(f"the cluster stopped with {code}")

    def _say(self, line: str) -> None:
        # Each line at once, also when the output is a file (make's log, a test's).
        self.stdout.write(line)
        self.stdout.flush()
