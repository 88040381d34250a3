"""MariaDB restarted in the middle of traffic: the app answers again by itself, without a storm of 500s.

The test starts a MariaDB of its own (on a port given to these tests, in a temporary folder), loads this
test's database into it (mariadb-dump from the suite's server), and serves it with gunicorn as production
does: persistent connections (CONN_MAX_AGE) checked before reuse (CONN_HEALTH_CHECKS). Clients list
slots and book throughout while the database is shut down and started again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from scheduling.models import Appointment
from tests.conftest import future_slot, token_for, wait_until
from tests.factories import PatientFactory
from tests.scheduling.asgi_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PORT = 3340
TOOLS = {
    name: shutil.which(name) or f"/usr/bin/{name}"
    for name in ("mariadb", "mariadb-dump", "mariadb-install-db")
}
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
# After the database is back, every request must succeed within this (the app reconnects by itself).
RECOVERY = 10


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class MariaDB:
    """mariadbd on 127.0.0.1:PORT in a folder of its own; stop() is a clean shutdown, start() again."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.datadir = folder / "data"
        self.socket = folder / "mariadb.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        subprocess.run(  # noqa: S603
            [
                TOOLS["mariadb-install-db"],
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        wait_until(lambda: not port_open(PORT), timeout=30, what=f"port {PORT} to be free")
        log = (self.folder / "mariadb.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [
                MARIADBD,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.folder / 'mariadb.pid'}",
                f"--port={PORT}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--skip-log-bin",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(lambda: self.sql("SELECT 1", check=False).returncode == 0, timeout=30, what="mariadbd")

    def stop(self) -> None:
        """SIGTERM: MariaDB's clean shutdown, as a restart for an upgrade does; open connections break."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        wait_until(lambda: not port_open(PORT), timeout=30, what=f"port {PORT} to close")

    def sql(self, statement: str, *, check: bool = True, stdin: bytes | None = None, database: str = ""):
        """Run SQL as root over the socket: `statement`, or what `stdin` holds (a dump)."""
        command = [TOOLS["mariadb"], "--no-defaults", "-S", str(self.socket), "-uroot", "-N", "-B"]
        command += ["-e", statement] if statement else []
        return subprocess.run(  # noqa: S603
            [*command, *([database] if database else [])],
            check=check,
            capture_output=True,
            input=stdin,
        )


@contextlib.contextmanager
def own_database() -> Iterator[MariaDB]:
    """A MariaDB holding a copy of this test's database (what the test committed so far), as `opd`."""
    folder = Path(tempfile.mkdtemp(prefix="opd-mariadb-"))
    server = MariaDB(folder)
    try:
        server.install()
        server.start()
        server.sql(
            "CREATE DATABASE opd CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            "CREATE USER 'opd'@'127.0.0.1' IDENTIFIED BY 'opd';"
            "GRANT ALL ON opd.* TO 'opd'@'127.0.0.1';"
        )
        db = connection.settings_dict
        dump = subprocess.run(  # noqa: S603
            [
                TOOLS["mariadb-dump"],
                "--no-defaults",
                f"-h{db['HOST']}",
                f"-P{db['PORT'] or 3306}",
                f"-u{db['USER']}",
                db["NAME"],
                "--single-transaction",
                "--skip-triggers",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "MYSQL_PWD": db["PASSWORD"]},
        ).stdout
        server.sql("", stdin=dump, database="opd")
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def gunicorn(database_url: str) -> Iterator[str]:
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opd.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CONN_MAX_AGE": "60",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "opd.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--no-control-socket",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
                return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_until(answers, timeout=30, interval=0.1, what="gunicorn")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log_path.unlink(missing_ok=True)


def call(url: str, token: str, *, body: dict | None = None) -> tuple[int, str | None, dict]:
    request = urllib.request.Request(  # noqa: S310 (a loopback test server)
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, None, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After"), json.loads(exc.read() or b"{}")


def test_the_app_recovers_by_itself_when_mariadb_restarts_mid_traffic(staff_user, doctor, department, org):
    reception = token_for(staff_user)
    slots = [future_slot(doctor, department) for _ in range(30)]
    patients = [PatientFactory(organization=org) for _ in slots]
    existing = list(Appointment.objects.values_list("pk", flat=True))

    with own_database() as database, gunicorn(f"mysql://opd:opd@127.0.0.1:{PORT}/opd") as url:
        answers: list[tuple[float, str, int, str | None, dict]] = []
        stop = threading.Event()

        def traffic() -> None:
            for slot, patient in zip(slots, patients, strict=True):
                for kind, target, body in (
                    ("list", f"{url}/api/v1/slots/?doctor={doctor.pk}", None),
                    ("book", f"{url}/api/v1/appointments/", {"slot": slot.pk, "patient": patient.pk}),
                ):
                    if stop.is_set():
                        return
                    answers.append((time.monotonic(), kind, *call(target, reception, body=body)))
                time.sleep(0.05)

        def successes_since(moment: float) -> int:
            return sum(1 for when, _k, status, _r, _b in answers if when > moment and status in (200, 201))

        client = threading.Thread(target=traffic)
        client.start()
        wait_until(lambda: len(answers) >= 4, what="traffic before the restart")
        database.stop()
        time.sleep(0.5)  # a moment without a database: requests arrive meanwhile
        database.start()
        back_at = time.monotonic()
        # Traffic goes on until a dozen requests have succeeded after the restart.
        wait_until(
            lambda: successes_since(back_at) >= 12 or not client.is_alive(), timeout=60, what="traffic"
        )
        stop.set()
        client.join(timeout=60)
        stored = database.sql("SELECT id FROM scheduling_appointment", database="opd").stdout.decode().split()

    statuses = [status for _t, _k, status, _r, _b in answers]
    assert 500 not in statuses, answers
    # While the database was away: 503 with Retry-After and the error shape, never a traceback.
    for _t, _kind, status, retry_after, body in answers:
        assert status in (200, 201, 503), (status, body)
        if status == 503:
            assert retry_after is not None
            assert body["error"]["code"] == "service_unavailable"
    # Once it is back, everything succeeds again within seconds, with nobody restarting anything.
    after = [(when, status) for when, _k, status, _r, _b in answers if when > back_at]
    first_success = next(index for index, (_when, status) in enumerate(after) if status in (200, 201))
    assert after[first_success][0] - back_at < RECOVERY
    assert {status for _when, status in after[first_success:]} <= {200, 201}, answers
    assert len(after) - first_success >= 12, "traffic went on after the restart"
    # Every 201 is a booking the database kept; a 503 booked nothing.
    booked = {str(body["id"]) for _t, kind, status, _r, body in answers if kind == "book" and status == 201}
    assert booked == set(stored) - {str(pk) for pk in existing}
    print(
        f"{statuses.count(503)} of {len(statuses)} answers 503, back {after[first_success][0] - back_at:.2f} s"
    )
