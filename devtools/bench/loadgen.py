"""HTTP load: wrk for reads, and a booking storm of many concurrent clients in Python (and the same closed
loop from wrk, whose C client leaves the server the CPU the Python clients spend: `wrk_bookings`).

The booking clients run in a few processes (threads inside each) so that one interpreter lock does not
serialize a hundred clients; each keeps its connection open and times every request itself, so latency
is reported per outcome (booked, refused as full). Nothing here imports Django: the children are forked
from a process that closed its database connections first.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import random
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field


def percentile(values: list[float], fraction: float) -> float | None:
    """PERCENTILE_CONT over a list (the same definition as the statistics use)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass
class Timings:
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        values = self.latencies_ms
        return {
            "count": len(values),
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
            "p99_ms": percentile(values, 0.99),
            "max_ms": max(values) if values else None,
        }


def get_timings(host: str, port: int, path: str, headers: dict, count: int) -> Timings:
    """`count` sequential GETs on one keep-alive connection (reconnecting when the server closes it)."""
    timings = Timings()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for _ in range(count):
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
        timings.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.close()
    return timings


_WRK_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    *,
    headers: dict,
    threads: int = 2,
    connections: int = 32,
    seconds: int = 10,
    server_pid: int | None = None,
) -> dict:
    """Requests per second and latency percentiles from wrk (Debian's package); with `server_pid`, also
    the CPU that server (and its workers) spent per request, in microseconds."""
    from .cpu import tree_cpu

    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    args = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    cpu_before = tree_cpu(server_pid) if server_pid else 0.0
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    cpu_spent = tree_cpu(server_pid) - cpu_before if server_pid else 0.0
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise RuntimeError(f"wrk printed no Requests/sec line:\n{output}")
    rps = float(found.group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    latency = {f"p{m[0]}_ms": float(m[1]) * _UNITS[m[2]] for m in _WRK_LATENCY.findall(output)}
    out = {"rps": rps, "non_2xx": int(errors.group(1)) if errors else 0, **latency, "raw": output}
    requests = re.search(r"(\d+) requests in", output)
    if server_pid and requests and int(requests.group(1)):
        out["server_cpu_us_per_request"] = round(cpu_spent * 1e6 / int(requests.group(1)))
    return out


# A closed loop of bookings from wrk: each of its threads walks its own share of the patients (so no two
# bookings of one patient race) and picks a random slot; statuses are counted per thread and summed.
_WRK_BOOKING_SCRIPT = """
local patients = {%(patients)s}
local slots = {%(slots)s}
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  counts = {}
  n = 0
  math.randomseed(1000 + id)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Token %(token)s"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  local patient = patients[((n - 1) * %(threads)d + id) %% #patients + 1]
  local slot = slots[math.random(#slots)]
  return wrk.format(nil, "/api/v1/appointments/", nil,
    '{"patient":' .. patient .. ',"slot":' .. slot .. '}')
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + count
    end
  end
  io.write("STATUSES")
  for status, count in pairs(total) do io.write(" " .. status .. "=" .. count) end
  io.write("\\nDURATION_US " .. summary.duration .. "\\n")
end
"""


def wrk_bookings(
    url: str, *, token: str, patient_ids: list[int], slot_ids: list[int], connections: int, seconds: int
) -> dict:
    """Bookings from wrk's `connections` closed-loop connections for `seconds`: bookings a second (201s
    only), every status counted, and wrk's latency percentiles over all answers."""
    import tempfile

    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    threads = 2
    script = _WRK_BOOKING_SCRIPT % {
        "patients": ",".join(map(str, patient_ids)),
        "slots": ",".join(map(str, slot_ids)),
        "token": token,
        "threads": threads,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as handle:
        handle.write(script)
        handle.flush()
        args = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", handle.name]
        output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    statuses = re.search(r"STATUSES(.*)", output)
    duration = re.search(r"DURATION_US (\d+)", output)
    if statuses is None or duration is None:
        raise RuntimeError(f"wrk's booking script printed no counts:\n{output}")
    counts = {status: int(count) for status, count in re.findall(r"(\d+)=(\d+)", statuses.group(1))}
    wall = int(duration.group(1)) / 1e6
    latency = {f"p{m[0]}_ms": float(m[1]) * _UNITS[m[2]] for m in _WRK_LATENCY.findall(output)}
    return {
        "connections": connections,
        "seconds": round(wall, 2),
        "outcomes": counts,
        "booked": counts.get("201", 0),
        "bookings_per_second": round(counts.get("201", 0) / wall, 1) if wall else None,
        "requests_per_second": round(sum(counts.values()) / wall, 1) if wall else None,
        **latency,
    }


@dataclass
class StormPlan:
    host: str
    port: int
    token: str
    slot_ids: list[int]
    patients_per_client: list[list[int]]
    seconds: float = 10.0
    processes: int = 4
    # One request per client, all released at once (a race), instead of a timed storm.
    race: bool = False
    # Open loop: each client sends one booking every `interval` seconds (a person at a desk), instead of
    # the next one as soon as the last answer came (closed loop, the server's saturation).
    interval: float | None = None


def _client(plan: StormPlan, index: int, start_at: float, out: list) -> None:
    rng = random.Random(index)  # noqa: S311 (load, not security)
    conn = http.client.HTTPConnection(plan.host, plan.port, timeout=120)
    headers = {"Authorization": f"Token {plan.token}", "Content-Type": "application/json"}
    patients = iter(plan.patients_per_client[index])
    patient = next(patients, None)
    full: set[int] = set()
    open_slots = list(plan.slot_ids)
    while time.time() < start_at:
        time.sleep(0.0005)
    deadline = start_at + plan.seconds
    # Open-loop clients start spread over one interval, so they do not all arrive together.
    next_send = start_at + (rng.random() * plan.interval if plan.interval else 0)
    while patient is not None and (plan.race or time.time() < deadline):
        if plan.interval:
            pause = next_send - time.time()
            if pause > 0:
                time.sleep(pause)
            if time.time() >= deadline:
                break
            next_send += plan.interval
        if plan.race:
            slot = plan.slot_ids[index % len(plan.slot_ids)]
        else:
            candidates = [s for s in open_slots if s not in full] or open_slots
            slot = rng.choice(candidates)
        body = json.dumps({"patient": patient, "slot": slot})
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/appointments/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection(plan.host, plan.port, timeout=120)
            out.append(("error", (time.perf_counter() - started) * 1000, ""))
            continue
        elapsed = (time.perf_counter() - started) * 1000
        code = ""
        if response.status != 201:
            try:
                code = json.loads(payload)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        out.append((response.status, elapsed, code))
        if response.status == 201:
            patient = next(patients, None)
        elif code == "slot_full":
            full.add(slot)
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(plan.host, plan.port, timeout=120)
        if plan.race:
            break
    conn.close()


def _process(plan: StormPlan, indexes: list[int], start_at: float, queue) -> None:
    out: list = []
    threads = [threading.Thread(target=_client, args=(plan, i, start_at, out)) for i in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(out)


def storm(plan: StormPlan) -> dict:
    """Run the clients; return counts per outcome and latency percentiles (all, booked, refused)."""
    clients = len(plan.patients_per_client)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # every client connected and waiting before the first request
    groups = [list(range(p, clients, plan.processes)) for p in range(plan.processes)]
    procs = [ctx.Process(target=_process, args=(plan, g, start_at, queue)) for g in groups if g]
    for p in procs:
        p.start()
    results = [row for _ in procs for row in queue.get()]
    for p in procs:
        p.join()
    wall = (max(time.time(), start_at) - start_at) if plan.race else plan.seconds
    booked = Timings([ms for status, ms, _ in results if status == 201])
    refused = Timings([ms for status, ms, _ in results if status == 409])
    everything = Timings([ms for _, ms, _ in results])
    outcomes: dict[str, int] = {}
    for status, _, code in results:
        key = str(status) + (f" {code}" if code else "")
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": len(results),
        "booked": booked.summary()["count"],
        "outcomes": outcomes,
        "requests_per_second": round(len(results) / wall, 1) if wall else None,
        "bookings_per_second": round(len(booked.latencies_ms) / wall, 1) if wall else None,
        "all": everything.summary(),
        "booked_latency": booked.summary(),
        "refused_latency": refused.summary(),
    }
