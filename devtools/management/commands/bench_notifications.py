"""Benchmark: one Celery worker sending SMS through the file backend. Not a test; numbers for the README.

Run it against a scratch database (it writes an organization "bench-notifications", a patient and N
messages, and removes the messages afterwards unless --keep):

    DATABASE_URL=mysql://.../test_opd_bench REDIS_URL=redis://... manage.py bench_notifications --count 5000

The worker is a real `celery -A opd worker` process (prefork with one child by default, as deployed, or
--pool solo) consuming a queue of its own; the clock runs from the first send task published to the last
message marked sent. The messages are counted again in the SMS files: each must appear exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max, Min
from django.utils import timezone

from notifications import conf
from notifications.models import Channel, Kind, Notification, Status
from notifications.services import new_notification, notifications_enqueue
from notifications.tasks import send_notification
from opd.core.models import Organization
from patients.models import Patient
from patients.services import patient_create

BENCH_SLUG = "bench-notifications"
KEY_PREFIX = "bench:"


class Command(BaseCommand):
    help = "Measure how many notifications one Celery worker sends per second through the file SMS backend."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=2000, help="Messages to send (default 2000).")
        parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Processes of the one worker (prefork; default 1)."
        )
        parser.add_argument("--keep", action="store_true", help="Keep the messages afterwards.")
        parser.add_argument("--timeout", type=float, default=600, help="Give up after this many seconds.")

    def handle(
        self, *args, count=2000, pool="prefork", concurrency=1, keep=False, timeout=600.0, **options
    ) -> None:
        if count < 1 or concurrency < 1:
            raise CommandError("--count and --concurrency must be at least 1.")
        if pool == "solo" and concurrency != 1:
            raise CommandError("The solo pool runs one task at a time: leave out --concurrency.")
        if conf.sms_backend_path() != "notifications.backends.FileSmsBackend":
            raise CommandError(
                "The benchmark measures the file SMS backend; OPD_SMS_BACKEND is set to another."
            )
        patient = self._patient()
        Notification.objects.filter(dedup_key__startswith=KEY_PREFIX).delete()
        queue = f"bench-{uuid.uuid4().hex[:10]}"
        worker = self._start_worker(queue, pool, concurrency)
        try:
            ids, enqueue_seconds = self._enqueue(patient, count)
            self.stdout.write(f"Wrote {count} messages to the outbox in {enqueue_seconds:.2f} s.")
            started = timezone.now()
            published = time.perf_counter()
            for pk in ids:
                send_notification.apply_async(args=(pk,), queue=queue)
            publish_seconds = time.perf_counter() - published
            sent = self._wait(ids, timeout, worker)
            self._report(ids, started, publish_seconds, sent, f"{pool}, concurrency {concurrency}")
        finally:
            self._stop(worker)
            if not keep:
                Notification.objects.filter(dedup_key__startswith=KEY_PREFIX).delete()

    def _patient(self) -> Patient:
        organization, _ = Organization.objects.get_or_create(
            slug=BENCH_SLUG, defaults={"name": "Benchmark (notifications)"}
        )
        patient = Patient.objects.filter(organization=organization).first()
        if patient is None:
            patient = patient_create(
                actor=None,
                organization=organization,
                first_name="Bench",
                last_name="Mark",
                date_of_birth=dt.date(1980, 1, 1),
                phone="+44 20 7946 0000",
            )
        return patient

    def _enqueue(self, patient: Patient, count: int) -> tuple[list[int], float]:
        # Due in a minute, so the service leaves them to us (no on-commit task to the default queue);
        # then made due at once, as the dispatcher would find them.
        later = timezone.now() + dt.timedelta(minutes=1)
        began = time.perf_counter()
        ids = []
        for chunk in range(0, count, 500):
            rows = [
                new_notification(
                    organization_id=patient.organization_id,
                    patient_id=patient.pk,
                    channel=Channel.SMS,
                    kind=Kind.REMINDER,
                    to=patient.phone,
                    body=f"Benchmark message {n}: your appointment is tomorrow at 09:00 Europe/London.",
                    dedup_key=f"{KEY_PREFIX}{n}",
                    scheduled_for=later,
                )
                for n in range(chunk, min(chunk + 500, count))
            ]
            ids += [row.pk for row in notifications_enqueue(rows=rows)]
        elapsed = time.perf_counter() - began
        Notification.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
        return ids, elapsed

    def _start_worker(self, queue: str, pool: str, concurrency: int) -> dict:
        folder = Path(tempfile.mkdtemp(prefix="opd-bench-"))
        name = f"bench-{uuid.uuid4().hex[:8]}"
        log = folder / "worker.log"
        pidfile = folder / "worker.pid"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "opd",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--queues={queue}",
            f"--hostname={name}@%h",
            f"--pidfile={pidfile}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
                command, cwd=settings.BASE_DIR, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if f"{name}@" in text and " ready." in text:
                self.stdout.write(f"Worker {name} ({pool}, concurrency {concurrency}) is ready; log: {log}")
                return {"process": process, "log": log, "pidfile": pidfile}
            if process.poll() is not None:
                raise CommandError(f"The worker exited:\n{text}")
            time.sleep(0.1)
        process.kill()
        raise CommandError(f"The worker did not start:\n{log.read_text(errors='replace')}")

    def _wait(self, ids: list[int], timeout: float, worker: dict) -> int:
        deadline = time.monotonic() + timeout
        rows = Notification.objects.filter(pk__in=ids)
        while time.monotonic() < deadline:
            open_rows = rows.exclude(status__in=[Status.SENT, Status.FAILED]).count()
            if not open_rows:
                break
            if worker["process"].poll() is not None:
                raise CommandError("The worker died during the benchmark; see its log.")
            time.sleep(0.2)
        else:
            raise CommandError(f"Not finished after {timeout} s.")
        return rows.filter(status=Status.SENT).count()

    def _report(self, ids: list[int], started, publish_seconds: float, sent: int, shape: str) -> None:
        rows = Notification.objects.filter(pk__in=ids)
        span = rows.aggregate(first=Min("sent_at"), last=Max("sent_at"))
        elapsed = (span["last"] - started).total_seconds()
        latencies = sorted(
            (sent_at - started).total_seconds() for sent_at in rows.values_list("sent_at", flat=True)
        )
        wanted = {f"opd-notification-{pk}" for pk in ids}
        lines = 0
        for path in conf.sms_file_dir().glob("sms-*.jsonl"):
            with path.open() as handle:
                lines += sum(1 for line in handle if json.loads(line)["message_id"] in wanted)
        attempts = sum(rows.values_list("attempts", flat=True))
        self.stdout.write(
            f"Published {len(ids)} send tasks in {publish_seconds:.2f} s "
            f"({len(ids) / publish_seconds:.0f}/s from this process)."
        )
        self.stdout.write(
            f"One worker ({shape}) sent {sent} of {len(ids)} in {elapsed:.2f} s: "
            f"{sent / elapsed:.0f} messages/s (median time to sent {statistics.median(latencies):.2f} s)."
        )
        self.stdout.write(f"SMS lines written for these messages: {lines}; attempts recorded: {attempts}.")
        if lines != len(ids) or sent != len(ids):
            raise CommandError("Some message was not sent exactly once.")

    def _stop(self, worker: dict) -> None:
        process = worker["process"]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
