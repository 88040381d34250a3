"""Websocket fan-out: N sockets on one clinic's queue over two ASGI processes sharing the Redis channel
layer, and a few queue changes (a booking for today, then its cancellation) sent through gunicorn's API.

Each socket is a client of its own in one asyncio process, as a waiting-room screen or a dashboard is: it
answers the server's pings and sends none (browsers send none). A change's latency, per socket, is from
the moment its HTTP request is sent to the moment that socket has read the event. A socket that saw a
gap gets a fresh snapshot from the server instead (counted as resynced, not lost); a socket that got
neither for a change lost it; a socket the server or the client closed is counted with its close code,
so a drop says who dropped it.

The client shares the two cores with the servers, Redis and MariaDB: its own delay is measured first
with a few sockets (`baseline`), and the figures with many sockets are an upper bound.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .loadgen import percentile


@dataclass
class Socket:
    index: int
    events: dict[str, float] = field(default_factory=dict)  # "<appointment id>:<action>" -> perf_counter
    snapshots_after_start: int = 0
    closed: str | None = None  # "server 1006", "client 1011", ...


@dataclass
class FanoutPlan:
    ws_urls: list[str]  # one per ASGI process; sockets are spread over them in turn
    http_host: str
    http_port: int
    token: str
    clinic_id: int
    slot_id: int
    patient_ids: list[int]
    sockets: int
    changes: int = 6
    pause: float = 1.0  # seconds between two changes (each is measured on its own)
    settle: float = 5.0  # seconds to wait for the last change to reach everyone
    server_pids: list[int] = field(default_factory=list)  # the ASGI processes, for their CPU time


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _key(appointment_id: int, action: str) -> str:
    return f"{appointment_id}:{action}"


async def _open(plan: FanoutPlan, index: int, origin: str) -> Any:
    from websockets.asyncio.client import connect

    url = f"{plan.ws_urls[index % len(plan.ws_urls)]}/ws/queue/clinic/{plan.clinic_id}/"
    ws = await connect(
        url,
        origin=origin,  # type: ignore[arg-type]
        subprotocols=["opd-token", plan.token],  # type: ignore[list-item]
        ping_interval=None,  # a browser sends no pings; it answers the server's
        open_timeout=60,
        max_queue=None,
    )
    first = json.loads(await ws.recv())
    if first.get("type") != "snapshot":
        raise RuntimeError(f"socket {index}: first frame {first}")
    return ws


async def _read(ws: Any, state: Socket) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "event":
                state.events[_key(message["appointment_id"], message["action"])] = now
            elif message["type"] == "snapshot":
                state.snapshots_after_start += 1
    except ConnectionClosed as closed:
        # Who closed first says who dropped it: the server (a close frame received) or this client.
        frame = closed.rcvd or closed.sent
        by = "server" if closed.rcvd is not None else "client"
        state.closed = f"{by} {frame.code if frame is not None else 1006}"


def _post(host: str, port: int, path: str, token: str, body: dict) -> tuple[int, dict, float]:
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=30)
    payload = json.dumps(body)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    connection.connect()  # connected before the clock starts: the change is sent, not dialled
    sent = time.perf_counter()
    connection.request("POST", path, body=payload, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, answer, sent


async def run_fanout(plan: FanoutPlan) -> dict:
    origin = plan.ws_urls[0].replace("ws://", "http://")
    states = [Socket(i) for i in range(plan.sockets)]
    opening = asyncio.Semaphore(50)  # handshakes a few dozen at a time, as pages open over a morning

    async def open_one(i: int) -> Any:
        async with opening:
            return await _open(plan, i, origin)

    connect_started = time.perf_counter()
    sockets = await asyncio.gather(*(open_one(i) for i in range(plan.sockets)))
    connect_seconds = time.perf_counter() - connect_started
    readers = [asyncio.create_task(_read(ws, s)) for ws, s in zip(sockets, states, strict=True)]
    await asyncio.sleep(0.5)

    loop = asyncio.get_running_loop()
    # CPU time spent while the changes go out: a figure the machine's other load does not inflate as
    # it inflates latencies (the servers' per delivery, and this client's own).
    servers_cpu = sum(cpu_seconds(pid) for pid in plan.server_pids)
    client_cpu = time.process_time()
    sent_at: dict[str, float] = {}
    order: list[str] = []
    appointment_id: int | None = None
    patients = iter(plan.patient_ids)
    for n in range(plan.changes):
        if n % 2 == 0:
            status, answer, sent = await loop.run_in_executor(
                None,
                _post,
                plan.http_host,
                plan.http_port,
                "/api/v1/appointments/",
                plan.token,
                {"patient": next(patients), "slot": plan.slot_id},
            )
            if status != 201:
                raise RuntimeError(f"booking answered {status}: {answer}")
            appointment_id = answer["id"]
            key = _key(answer["id"], "booked")
        else:
            status, answer, sent = await loop.run_in_executor(
                None,
                _post,
                plan.http_host,
                plan.http_port,
                f"/api/v1/appointments/{appointment_id}/cancel/",
                plan.token,
                {},
            )
            if status != 200:
                raise RuntimeError(f"cancellation answered {status}: {answer}")
            key = _key(answer["id"], "cancelled")
        sent_at[key] = sent
        order.append(key)
        await asyncio.sleep(plan.pause)
    await asyncio.sleep(plan.settle)
    servers_cpu = sum(cpu_seconds(pid) for pid in plan.server_pids) - servers_cpu
    client_cpu = time.process_time() - client_cpu
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)

    latencies: list[float] = []
    lost_events = resynced = 0
    lost_sockets: set[int] = set()
    for state in states:
        for key in order:
            if key in state.events:
                latencies.append((state.events[key] - sent_at[key]) * 1000)
            elif state.snapshots_after_start:
                resynced += 1
            else:
                lost_events += 1
                lost_sockets.add(state.index)
    closed: dict[str, int] = {}
    for state in states:
        if state.closed and not state.closed.endswith(" 1000"):
            closed[state.closed] = closed.get(state.closed, 0) + 1
    return {
        "sockets": plan.sockets,
        "processes": len(plan.ws_urls),
        "changes": len(order),
        "connect_seconds": round(connect_seconds, 2),
        "deliveries": len(latencies),
        "expected_deliveries": plan.sockets * len(order),
        "lost_deliveries": lost_events,
        "sockets_that_lost_any": len(lost_sockets),
        "resynced_deliveries": resynced,
        "closed_early": closed,
        "servers_cpu_us_per_delivery": round(servers_cpu * 1e6 / max(len(latencies), 1), 1),
        "client_cpu_us_per_delivery": round(client_cpu * 1e6 / max(len(latencies), 1), 1),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) if latencies else None,
    }


def fanout_setup(org_id: int, clinic_id: int) -> dict:
    """A slot later today at the clinic (in its time zone) with room for every booking, and patients."""
    from django.utils import timezone

    from opd.core.models import Clinic
    from patients.models import Patient
    from scheduling.models import Doctor, Slot

    clinic = Clinic.objects.get(pk=clinic_id)
    doctor = (
        Doctor.objects.filter(organization_id=org_id, departments__clinic_id=clinic_id).order_by("pk").first()
    )
    if doctor is None:
        raise SystemExit("the bench clinic has no doctor")
    department = doctor.departments.filter(clinic_id=clinic_id).first()
    if department is None:
        raise SystemExit("the bench doctor has no department at the clinic")
    start = (timezone.now() + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    local = timezone.localtime(start, clinic.tz)
    if local.date() != timezone.localtime(timezone.now(), clinic.tz).date() or local.hour >= 23:
        raise SystemExit(
            "the fan-out needs a slot later today in the clinic's time zone: run after 00:00 there"
        )
    slot = Slot.objects.create(
        organization_id=org_id,
        clinic_id=clinic_id,
        department=department,
        doctor=doctor,
        date=local.date(),
        start=start,
        end=start + dt.timedelta(minutes=15),
        capacity=50,
    )
    patients = list(
        Patient.objects.filter(organization_id=org_id).order_by("-pk").values_list("pk", flat=True)[:10]
    )
    return {"slot_id": slot.pk, "patient_ids": patients}


def fanout(plan: FanoutPlan) -> dict:
    return asyncio.run(run_fanout(plan))
