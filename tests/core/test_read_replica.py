"""Read replica routing (#19.1) on a real MariaDB primary and binlog replica, both started by
`.ci/services.sh REPLICA=1` in a folder of the test's own, behind a real gunicorn.

One test walks the whole story (the pair is one set of fixed ports, so its phases cannot be split over
xdist workers): another user's slot listing comes from the replica, the user who just booked reads the
primary, a lagging replica and a stopped one hand the reads to the primary, with no 500; and a backup of
that primary (which writes a binary log) records its binlog position.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection

from tests.conftest import wait_until

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRIMARY_PORT, REPLICA_PORT, HTTP_PORT = 3330, 3331, 6403
MAX_LAG = 2  # REPLICA_MAX_LAG_SECONDS of the server under test
CLIENT, ADMIN, DUMP = (
    shutil.which(tool) or f"/usr/bin/{tool}" for tool in ("mariadb", "mariadb-admin", "mariadb-dump")
)

SEED = """
import json
from django.utils import timezone
import datetime as dt
from opd.core.models import Role
from opd.core.services import token_issue
from tests.factories import *

org = OrganizationFactory()
clinic = ClinicFactory(organization=org)
department = DepartmentFactory(clinic=clinic)
doctor = DoctorFactory(user__organization=org, departments=[department])
start = timezone.now().replace(microsecond=0) + dt.timedelta(days=3)
slots = [
    SlotFactory(doctor=doctor, department=department, capacity=4, start=start + dt.timedelta(minutes=20 * n))
    for n in range(3)
]
tokens = []
for name in ("writer", "reader"):
    user = UserFactory(username=name, role=Role.PATIENT, organization=org)
    PatientFactory(organization=org, user=user)
    tokens.append(token_issue(user=user, name="replica test")[1])
print(json.dumps({"slots": [slot.pk for slot in slots], "writer": tokens[0], "reader": tokens[1]}))
"""


@dataclass
class Pair:
    folder: pathlib.Path
    url: str
    writer: str
    reader: str
    slots: list[int]
    env: dict[str, str]

    def replica_sql(self, sql: str, *, names: bool = False) -> str:
        """As the replica's root (who may write past read_only, as a DBA could), on its socket."""
        socket = str(self.folder / "mariadb-replica.sock")
        return subprocess.run(  # noqa: S603
            [CLIENT, "--no-defaults", "-S", socket, "-uroot", *([] if names else ["-N"]), "-e", sql],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def log(self) -> str:
        return (self.folder / "gunicorn.log").read_text(errors="replace")[-3000:]

    def lag(self) -> int | None:
        for line in self.replica_sql("SHOW SLAVE STATUS\\G", names=True).splitlines():
            name, _, value = line.strip().partition(": ")
            if name == "Seconds_Behind_Master":
                return None if value == "NULL" else int(value)
        return None

    def replica_booked(self, slot: int) -> int:
        sql = f"SELECT booked_count FROM opd.scheduling_slot WHERE id = {int(slot)}"  # noqa: S608 (an int)
        return int(self.replica_sql(sql))

    def set_replica_capacity(self, slot: int, capacity: int) -> None:
        sql = f"UPDATE opd.scheduling_slot SET capacity = {int(capacity)} WHERE id = {int(slot)}"  # noqa: S608
        self.replica_sql(sql)

    def request(self, path: str, token: str, body: dict | None = None) -> tuple[int, object]:
        request = urllib.request.Request(  # noqa: S310 (our loopback server)
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def listing(self, token: str) -> dict[int, dict]:
        status, body = self.request("/api/v1/slots/", token)
        assert status == 200, body
        rows = body["results"] if isinstance(body, dict) else body
        return {row["id"]: row for row in rows}

    def book(self, token: str, slot: int) -> None:
        status, body = self.request("/api/v1/appointments/", token, {"slot": slot})
        assert status == 201, body


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run that fails the test with the command's own error output."""
    done = subprocess.run(command, capture_output=True, check=False, timeout=180, **kwargs)  # noqa: S603
    if done.returncode != 0:
        error = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
        raise AssertionError(f"{command[:4]} exited {done.returncode}:\n{error[-3000:]}")
    return done


def _stop_mariadb(folder: pathlib.Path, name: str) -> None:
    sock = folder / f"{name}.sock"
    subprocess.run(  # noqa: S603
        [ADMIN, "--no-defaults", "-S", str(sock), "-uroot", "shutdown"],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def pair(db, tmp_path_factory) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp("replica-pair")
    services_env = {
        **os.environ,
        "OPD_DATA_DIR": str(folder),
        "OPD_DB_PORT": str(PRIMARY_PORT),
        "OPD_REPLICA_PORT": str(REPLICA_PORT),
        # The shared Redis answers there, so services.sh starts none of its own.
        "OPD_REDIS_PORT": os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0],
        "REPLICA": "1",
    }
    server = None
    try:
        _run([ROOT / ".ci/services.sh"], env=services_env)
        # The schema (triggers included) from the suite's migrated test database, loaded into the primary:
        # it reaches the replica through replication, as every later write does.
        test_db = connection.settings_dict
        dump = _run(
            [
                DUMP,
                "--no-defaults",
                f"--host={test_db['HOST'] or '127.0.0.1'}",
                f"--port={test_db['PORT'] or 3306}",
                f"--user={test_db['USER']}",
                "--single-transaction",
                "--triggers",
                test_db["NAME"],
            ],
            env={**os.environ, "MYSQL_PWD": test_db["PASSWORD"]},
        ).stdout
        _run(
            [CLIENT, "--no-defaults", "-h127.0.0.1", f"-P{PRIMARY_PORT}", "-uopd", "opd"],
            input=dump,
            env={**os.environ, "MYSQL_PWD": "opd"},
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opd.settings.test",
            "DATABASE_URL": f"mysql://opd:opd@127.0.0.1:{PRIMARY_PORT}/opd",
            "REPLICA_DATABASE_URL": f"mysql://opd:opd@127.0.0.1:{REPLICA_PORT}/opd",
            "REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
            "REPLICA_STICKY_SECONDS": "600",  # longer than the test: the writer stays on the primary
            "CACHE_KEY_PREFIX": f"{os.environ.get('CACHE_KEY_PREFIX', 'opd-test')}-replica-rig",
            "CONN_MAX_AGE": "60",
            "PYTHONUNBUFFERED": "1",
        }
        seeded = _run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, env=env, text=True)
        ids = json.loads(seeded.stdout.strip().splitlines()[-1])
        log = (folder / "gunicorn.log").open("w")
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "opd.wsgi:application",
                "--bind",
                f"127.0.0.1:{HTTP_PORT}",
                "--workers",
                "1",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{HTTP_PORT}"

        def answers() -> bool:
            if server.poll() is not None:
                raise RuntimeError((folder / "gunicorn.log").read_text())
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_until(answers, timeout=30, interval=0.1, what="gunicorn to answer")
        yield Pair(folder, url, ids["writer"], ids["reader"], ids["slots"], env)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        for name in ("mariadb-replica", "mariadb"):
            _stop_mariadb(folder, name)


def test_others_read_the_replica_writers_the_primary_lag_or_outage_fall_back_and_a_backup_has_its_binlog_position(
    pair,
):
    one, two, three = pair.slots

    # Another user's listing comes from the replica: a value changed there only (as a DBA could) shows.
    assert pair.listing(pair.reader)[one]["capacity"] == 4
    pair.set_replica_capacity(one, 40)
    assert pair.listing(pair.reader)[one]["capacity"] == 40

    # The writer books, then reads the primary: their booking, and the primary's capacity.
    pair.book(pair.writer, two)
    seen = pair.listing(pair.writer)
    assert (seen[one]["capacity"], seen[two]["booked_count"]) == (4, 1)
    # The reader, who wrote nothing, is still served by the replica.
    assert pair.listing(pair.reader)[one]["capacity"] == 40
    pair.set_replica_capacity(one, 4)

    # The replica falls behind (delayed replication): past REPLICA_MAX_LAG_SECONDS the reader reads the
    # primary and sees a booking the replica does not have yet.
    pair.replica_sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 300; START SLAVE")
    pair.book(pair.writer, three)
    wait_until(lambda: (pair.lag() or 0) > MAX_LAG, timeout=30, interval=0.2, what="the replica to lag")
    # (Waited for, not asserted at once: the server looks at the lag at most once a second.)
    wait_until(
        lambda: pair.listing(pair.reader)[three]["booked_count"] == 1,
        timeout=15,
        interval=0.3,
        what=lambda: f"the reader on the primary; lag {pair.lag()}, server log:\n{pair.log()}",
    )
    assert pair.replica_booked(three) == 0  # still behind: that answer was the primary's

    # Caught up again, the reader is back on the replica (the DBA's change shows again).
    pair.replica_sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE")
    wait_until(lambda: pair.replica_booked(three) == 1 and pair.lag() == 0, timeout=30, what="catching up")
    pair.set_replica_capacity(one, 41)
    wait_until(
        lambda: pair.listing(pair.reader)[one]["capacity"] == 41, timeout=10, what="the reader on the replica"
    )

    # The replica stops: every read is answered by the primary, no 500.
    _stop_mariadb(pair.folder, "mariadb-replica")
    for _ in range(3):
        seen = pair.listing(pair.reader)
        assert (seen[one]["capacity"], seen[three]["booked_count"]) == (4, 1)
    assert "Traceback" not in (pair.folder / "gunicorn.log").read_text()

    # On this primary, which writes a binary log, `manage.py backup` records where its snapshot stands in
    # it: the start of a point-in-time recovery. (Here, not in a test of its own: one pair per run.)
    done = _run(
        [sys.executable, "manage.py", "backup", "--output-dir", str(pair.folder / "backups")],
        cwd=ROOT,
        env=pair.env,
        text=True,
    )
    match = re.search(r"Binlog position: (mariadb-bin\.\d+):(\d+);", done.stdout)
    assert match, done.stdout
    (path,) = (pair.folder / "backups").glob("*.sql.gz")
    with gzip.open(path, "rt") as dump:
        header = "".join(next(dump) for _ in range(40))
    assert f"CHANGE MASTER TO MASTER_LOG_FILE='{match[1]}', MASTER_LOG_POS={match[2]};" in header
