"""`manage.py bench` (what `make bench` runs): the benchmark on its own database and Redis DB.

The bench database is `test_opd_bench` on the server of DATABASE_URL (the application user may create
test_opd* databases, as the test suite does), seeded once with >= 1M appointments and care notes and kept
between runs. Redis DB 7 of REDIS_URL's server holds the benchmark's cache and Celery messages and is
emptied before and after. See devtools.bench.run for what is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

BENCH_DATABASE = "test_opd_bench"
BENCH_REDIS_DB = 7


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


class Command(BaseCommand):
    help = "Run the benchmark (seeding its database the first time) and write bench-results/latest.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database-name", default=BENCH_DATABASE)
        parser.add_argument("--redis-db", type=int, default=BENCH_REDIS_DB)
        parser.add_argument("--drop", action="store_true", help="Drop the bench database first (reseeds).")
        parser.add_argument("--seconds", type=int, default=10)
        parser.add_argument("--clients", type=int, default=100)
        parser.add_argument("--cold-runs", type=int, default=3)
        parser.add_argument("--sockets", type=int, default=1000, help="Websockets of the fan-out run.")
        parser.add_argument(
            "--only", choices=["fanout", "embedded", "booking"], help="Run one part of the bench alone."
        )
        parser.add_argument(
            "--scale",
            choices=["full", "small"],
            default="full",
            help="small: a quick run of the harness on a small database (test_opd_bench_small).",
        )

    def handle(self, *args, **options) -> None:
        database_url = os.environ.get("DATABASE_URL", "")
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.mysql" or not settings.REDIS_URL:
            raise CommandError(
                "The benchmark runs on MariaDB and Redis: run `make services` and export its URLs."
            )
        name = options["database_name"]
        if options["scale"] == "small" and name == BENCH_DATABASE:
            name = f"{BENCH_DATABASE}_small"
        if not name.startswith("test_opd"):
            raise CommandError("The bench database's name must start with test_opd (the user's grant).")
        self._create_database(name, drop=options["drop"])
        redis_url = _with_path(settings.REDIS_URL, f"/{options['redis_db']}")
        self._flush_redis(redis_url)
        env = {
            **os.environ,
            "DATABASE_URL": _with_path(database_url, f"/{name}"),
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": "bench",
            "CHANNELS_PREFIX": "bench",
            "DJANGO_SETTINGS_MODULE": "devtools.bench.settings",
            "DJANGO_DEBUG": "false",
        }
        command = [
            sys.executable,
            "-m",
            "devtools.bench.run",
            f"--seconds={options['seconds']}",
            f"--clients={options['clients']}",
            f"--cold-runs={options['cold_runs']}",
            f"--scale={options['scale']}",
            f"--sockets={options['sockets']}",
        ]
        if options["only"]:
            command.append(f"--only={options['only']}")
        try:
            result = subprocess.run(command, env=env, cwd=settings.BASE_DIR, check=False)  # noqa: S603
        finally:
            self._flush_redis(redis_url)
        if result.returncode:
            raise CommandError(f"The benchmark failed (exit {result.returncode}).")

    def _create_database(self, name: str, *, drop: bool) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            if drop:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )

    def _flush_redis(self, url: str) -> None:
        import redis

        redis.Redis.from_url(url).flushdb()
