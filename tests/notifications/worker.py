"""Real Celery worker processes for tests: `celery -A opd worker` against the test database and Redis.

Each worker consumes only the queue its test names (unique per test), so it never takes anyone else's
tasks and nobody takes its own; `purge_queue` removes what a test leaves behind in Redis (its queue and
the unacknowledged messages of a worker it killed), and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings

from tests.conftest import wait_until

READY_TIMEOUT = 30.0


def database_url() -> str:
    """The URL of the database this test process uses (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    return f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 3306}/{db['NAME']}"


def broker_url() -> str:
    from opd.celery import app

    return app.conf.broker_url


def process_env(overrides: dict, **environ: str) -> dict:
    """The environment of a process that works on this test's database and Redis, with these settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.notifications.worker_settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url(),
        "OPD_TEST_WORKER_SETTINGS": json.dumps(overrides),
        "PYTHONPATH": str(settings.BASE_DIR),
        "CONN_MAX_AGE": "0",
        # A worker executes what it receives; eager mode (test settings may turn it on) would make it
        # run the tasks it queues (dispatch -> send) inline instead of through the broker.
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **environ,
    }


class Worker:
    """One `celery worker --pool=solo` process; `start()` returns once it consumes its queue."""

    ready_text = " ready."

    def __init__(
        self, *, queue: str, folder: Path, overrides: dict | None = None, environ: dict | None = None
    ):
        self.queue = queue
        self.environ = environ or {}
        self.name = f"notif-test-{uuid.uuid4().hex[:8]}"
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pidfile = folder / f"{self.name}.pid"
        self.logfile = folder / f"{self.name}.log"
        self.overrides = {"OPD_NOTIFICATIONS_QUEUE": queue, **(overrides or {})}
        self.process: subprocess.Popen | None = None

    def arguments(self) -> list[str]:
        return [
            "worker",
            "--pool=solo",
            f"--queues={self.queue}",
            f"--hostname={self.name}@%h",
            f"--pidfile={self.pidfile}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]

    def spawn(self) -> Worker:
        env = process_env(self.overrides, **self.environ)
        command = [sys.executable, "-m", "celery", "-A", "opd", *self.arguments()]
        log = self.logfile.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
            command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Worker:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            return self.is_ready(self.log())

        wait_until(
            ready, timeout=timeout, interval=0.1, what=lambda: f"the worker to be ready:\n{self.log()}"
        )
        return self

    def is_ready(self, log: str) -> bool:
        return f"{self.name}@" in log and self.ready_text in log

    def start(self) -> Worker:
        return self.spawn().wait_ready()

    @property
    def pid(self) -> int:
        # The pid the worker wrote itself; with the solo pool it is the one process that runs tasks.
        return int(self.pidfile.read_text().strip())

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, no cleanup, as when a machine dies."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.forget()

    def forget(self) -> None:
        """Remove what a worker that is gone (killed ones included) left in the broker's shared keys:
        its remote-control mailbox and that mailbox's binding."""
        client = redis.Redis.from_url(broker_url())
        binding = "_kombu.binding.celery.pidbox"
        for member in client.smembers(binding):
            if member.decode(errors="replace").endswith(
                ".celery.pidbox"
            ) and f"{self.name}@" in member.decode(errors="replace"):
                client.srem(binding, member)
        for key in client.scan_iter(match=f"{self.name}@*"):
            client.delete(key)
        client.close()


class Beat(Worker):
    """`celery beat` with django-celery-beat's DatabaseScheduler: the CELERY_BEAT_SCHEDULE in `overrides`
    is copied into the test database's periodic-task tables, as in production."""

    ready_text = "beat: Starting..."

    def arguments(self) -> list[str]:
        return [
            "beat",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--pidfile={self.pidfile}",
            f"--schedule={self.folder / self.name}.schedule",
            "--loglevel=INFO",
        ]

    def is_ready(self, log: str) -> bool:
        return self.ready_text in log


def _queue_keys(queue: str) -> list[str]:
    # kombu's Redis transport: the queue's list and its priority lists.
    return [queue, *[f"{queue}\x06\x16{priority}" for priority in range(10)]]


def _routing_key(raw: bytes) -> str | None:
    try:
        return json.loads(raw)[2]
    except (ValueError, IndexError, TypeError):
        return None


def _deferred(raw: bytes) -> bool:
    """Whether an unacknowledged task waits in a worker for a later time (a retry with a countdown)."""
    try:
        eta = json.loads(raw)[0]["headers"]["eta"]
    except (ValueError, IndexError, KeyError, TypeError):
        return False
    if eta is None:
        return False
    when = dt.datetime.fromisoformat(eta)
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) > dt.datetime.now(dt.UTC)


def queue_drained(queue: str) -> bool:
    """Whether every task sent to `queue` that is due has run: none waits in its lists and none is
    unacknowledged (tasks are acknowledged late, once they have run), but for retries a worker holds
    for a later time. Asked twice, 0.1 s apart: a worker holds a message it has just taken for a moment
    before it records it as unacknowledged."""

    def drained_now(client: redis.Redis) -> bool:
        if any(client.llen(key) for key in _queue_keys(queue)):
            return False
        return all(_routing_key(raw) != queue or _deferred(raw) for _tag, raw in client.hscan_iter("unacked"))

    client = redis.Redis.from_url(broker_url())
    try:
        if not drained_now(client):
            return False
        time.sleep(0.1)
        return drained_now(client)
    finally:
        client.close()


def purge_queue(queue: str) -> None:
    """Delete a test queue from the broker, with the unacknowledged messages that were taken from it."""
    client = redis.Redis.from_url(broker_url())
    # kombu's Redis transport: the queue's list (and its priority lists), its exchange binding, and the
    # shared "unacked" hash and index, of which only entries routed to this queue are ours to remove.
    client.delete(*_queue_keys(queue), f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, raw in client.hscan_iter("unacked"):
        if _routing_key(raw) == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()
