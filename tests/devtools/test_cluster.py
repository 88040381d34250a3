"""Several nodes behind nginx (`manage.py cluster`, what `make cluster` runs), on the test database.

One cluster: nginx on 18000, gunicorn nodes on 18010 and 18011, ASGI nodes on 18020 and 18021 (50 more
on a second xdist worker). Without the Celery workers and beats, which start slowest and which no claim
here is about (beat has its own test: tests/core/test_beat_leader.py); what the bookings queue for them
goes to a queue of this module, removed at the end. Clients are threads in this process speaking HTTP and websockets to
nginx or to one node directly; what is true is read from MariaDB.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from websockets.sync.client import connect

from devtools.cluster import Layout
from scheduling.models import Appointment, Slot
from tests.conftest import token_for, wait_until
from tests.factories import PatientFactory, SlotFactory
from tests.notifications.worker import purge_queue
from tests.scheduling.queue_helpers import booked, move_to_daytime_zone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Each xdist worker its own ports, should two ever start a cluster (18000-18099 is this suite's range).
BASE_PORT = 18000 + 50 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
WAIT = 10
_hours = itertools.count(1)


def future_slot(doctor, department, *, capacity: int) -> Slot:
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(
        days=5, hours=next(_hours)
    )
    return SlotFactory(doctor=doctor, department=department, capacity=capacity, start=start)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback test cluster)
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Cluster:
    def __init__(self, folder: Path, process: subprocess.Popen[bytes], layout: Layout) -> None:
        self.folder = folder
        self.process = process
        self.layout = layout
        self.url = layout.url
        self.ws_url = layout.url.replace("http", "ws", 1)

    def state(self) -> dict:
        path = self.folder / "cluster.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def node_url(self, kind: str, index: int) -> str:
        port = self.layout.gunicorn_port(index) if kind == "http" else self.layout.asgi_port(index)
        return f"http://127.0.0.1:{port}"

    def access_log(self) -> list[str]:
        path = self.folder / "nginx-access.log"
        return path.read_text().splitlines() if path.exists() else []

    def output(self) -> str:
        logs = sorted((self.folder / "logs").glob("*.log"))
        return "\n".join(f"== {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs)


def _database_url() -> str:
    current = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return current._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    queue = f"cluster-test-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("cluster")
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opd.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CHANNELS_PREFIX": f"opd-test-cluster-{queue}",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # The storm is one client address and a few accounts: the per-hour booking limits are not its subject.
        "OPD_RATE_BOOKING_USER": "100000/hour",
        "OPD_RATE_BOOKING_IP": "100000/hour",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    layout = Layout(folder=folder, base=BASE_PORT)
    log = (folder / "supervisor.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 (our own command)
        [sys.executable, "manage.py", "cluster", f"--base-port={BASE_PORT}", f"--folder={folder}",
         "--gunicorn-workers=1", "--no-celery"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Cluster(folder, process, layout)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the cluster exited ({process.returncode}):\n{running.output()}")
            return bool(running.state())

        wait_until(ready, timeout=90, interval=0.2, what=lambda: f"the cluster:\n{running.output()}")
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        purge_queue(queue)


def post(url: str, body: dict, *, token: str, key: str | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body, headers); a connection that fails outright is status 0."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback test cluster)
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            parsed = {"raw": raw.decode(errors="replace")[:200]}
        return exc.code, parsed, dict(exc.headers)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}, {}


def run_clients(n: int, work) -> list:
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = work(i)
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def upstreams(lines: list[str], marker: str) -> Counter:
    return Counter(
        part.split("=", 1)[1]
        for line in lines
        if marker in line
        for part in line.split()
        if part.startswith("upstream=")
    )


def bookings_through_both_nodes_never_overbook(cluster, org, staff_user, doctor, department):
    slots = [future_slot(doctor, department, capacity=2) for _ in range(3)]
    patients = [PatientFactory(organization=org) for _ in range(30)]
    token = token_for(staff_user)
    seen_before = len(cluster.access_log())

    # Thirty clients at once, ten on each two-seat slot, all through nginx.
    outcomes = run_clients(
        30,
        lambda i: post(
            f"{cluster.url}/api/v1/appointments/",
            {"slot": slots[i % 3].pk, "patient": patients[i].pk},
            token=token,
        )[0],
    )

    assert Counter(outcomes) == {201: 6, 409: 24}
    for slot in slots:
        slot.refresh_from_db()
        assert slot.booked_count == 2 == Appointment.objects.filter(slot=slot).count()
    # Both gunicorn nodes took bookings.
    wait_until(lambda: len(cluster.access_log()) >= seen_before + 30, timeout=WAIT, what="nginx's access log")
    served = upstreams(cluster.access_log()[seen_before:], '"POST /api/v1/appointments/')
    assert set(served) == {f"127.0.0.1:{cluster.layout.gunicorn_port(i)}" for i in (0, 1)}, served


def a_queue_change_through_node_a_reaches_sockets_on_node_b_and_through_nginx(
    cluster, staff_user, doctor, department, clinic
):
    move_to_daytime_zone(clinic)
    appt = booked(staff_user, doctor, department, minutes=15)
    token = token_for(staff_user)
    node_b = cluster.node_url("ws", 1)
    with (
        connect(
            f"{node_b.replace('http', 'ws', 1)}/ws/queue/clinic/{clinic.pk}/",
            origin=node_b,
            subprotocols=["opd-token", token],
            open_timeout=WAIT,
        ) as on_b,
        connect(
            f"{cluster.ws_url}/ws/queue/clinic/{clinic.pk}/",
            origin=cluster.url,
            subprotocols=["opd-token", token],
            open_timeout=WAIT,
        ) as via_nginx,
    ):
        versions = [json.loads(ws.recv(timeout=WAIT))["version"] for ws in (on_b, via_nginx)]

        status, body, _ = post(
            f"{cluster.node_url('http', 0)}/api/v1/appointments/{appt.pk}/check-in/", {}, token=token
        )
        assert status == 200, body

        for ws, version in zip((on_b, via_nginx), versions, strict=True):
            event = json.loads(ws.recv(timeout=WAIT))
            assert (event["action"], event["version"]) == ("checked_in", version + 1)
            assert event["entry"]["token_label"] == body["token_label"]


def killing_a_gunicorn_node_mid_storm_loses_no_booking_and_retries_book_once(
    cluster, org, staff_user, doctor, department
):
    clients, rounds = 20, 3
    slots = [future_slot(doctor, department, capacity=clients) for _ in range(rounds)]
    patients = [PatientFactory(organization=org) for _ in range(clients)]
    token = token_for(staff_user)
    node_a = cluster.state()["processes"]["gunicorn-a"]
    answered = Counter()
    lock = threading.Lock()
    killed = threading.Event()

    def book_all(i: int) -> tuple[list[int], int]:
        """One client: a booking per round, each retried with its own key until it is answered."""
        ids, failures = [], 0
        for round_ in range(rounds):
            key = str(uuid.uuid4())
            body = {"slot": slots[round_].pk, "patient": patients[i].pk}
            for _attempt in range(50):
                status, answer, headers = post(
                    f"{cluster.url}/api/v1/appointments/", body, token=token, key=key
                )
                if status == 201:
                    ids.append(answer["id"])
                    if headers.get("Idempotent-Replayed"):
                        # The first try committed but its answer was lost with the node.
                        with lock:
                            answered["replayed"] += 1
                    break
                # A node lost with the request on it (502), nginx finding no node up (502/504), a
                # connection error: the outcome is unknown, so ask again with the same key.
                assert status in (0, 502, 503, 504), (status, answer)
                failures += 1
                killed.wait(timeout=0.2)
            with lock:
                answered["201"] += 1
                if answered["201"] == clients and not killed.is_set():
                    # A third of the way through the storm: node A dies with its workers.
                    os.killpg(node_a["pid"], signal.SIGKILL)
                    killed.set()
        return ids, failures

    outcomes = run_clients(clients, book_all)

    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert not errors, errors
    assert killed.is_set()
    answered_ids = [appointment_id for ids, _ in outcomes for appointment_id in ids]
    # Every client had every booking answered once, and the database holds exactly those: nothing a
    # client was told is missing, nothing was booked twice by a retry.
    assert len(answered_ids) == len(set(answered_ids)) == clients * rounds
    stored = Appointment.objects.filter(patient__in=patients)
    assert sorted(stored.values_list("pk", flat=True)) == sorted(answered_ids)
    assert Counter(stored.values_list("patient_id", flat=True)) == {p.pk: rounds for p in patients}
    for slot in Slot.objects.filter(pk__in=[s.pk for s in slots]):
        assert slot.booked_count == clients
    # The kill landed in the middle of the storm: some requests failed and were retried.
    retried = sum(failures for _, failures in outcomes)
    assert retried > 0
    print(
        f"storm: {retried} failed requests retried, {answered['replayed']} answers replayed"
    )  # shown with -rP

    # The supervisor brought node A back, and nginx sends it requests again.
    wait_until(
        lambda: cluster.state()["processes"]["gunicorn-a"]["restarts"] == 1,
        timeout=WAIT,
        what="node A to be restarted",
    )
    wait_until(
        lambda: answers(f"{cluster.node_url('http', 0)}/healthz"),
        timeout=30,
        what="node A to answer again",
    )


def test_two_nodes_behind_nginx_never_overbook_share_the_queue_and_survive_losing_one(
    cluster, org, staff_user, doctor, department, clinic
):
    """One test, three claims in turn: the cluster takes ~20 s to start, and pytest-xdist 3.8 on pytest
    9.2 no longer keeps an xdist_group on one worker (pytest-xdist issue 1386), so three tests would
    each start a cluster on each worker."""
    bookings_through_both_nodes_never_overbook(cluster, org, staff_user, doctor, department)
    a_queue_change_through_node_a_reaches_sockets_on_node_b_and_through_nginx(
        cluster, staff_user, doctor, department, clinic
    )
    killing_a_gunicorn_node_mid_storm_loses_no_booking_and_retries_book_once(
        cluster, org, staff_user, doctor, department
    )
