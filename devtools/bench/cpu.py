"""Where the machine's CPU goes while a load runs: each part's CPU seconds, read from /proc.

A closed-loop booking run is bound by the CPU of the two cores every part shares (the web workers,
MariaDB, Redis, the Celery worker and the load generator itself), so its figure is explained by how
many milliseconds of CPU each part spends per booking, not by a latency. Linux only (the bench's
machine); elsewhere every part reads as 0.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
# The servers the bench does not start, found by their process name.
NAMED = {"mariadb": ("mariadbd", "mysqld"), "redis": ("redis-server",)}


def _own_cpu(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    return 0.0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(child) for child in (task / "children").read_text().split()]
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (gunicorn's workers, Celery's pool)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += _own_cpu(current)
        pending += _children(current)
    return total


def named_cpu(names: tuple[str, ...]) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    total += _own_cpu(int(entry.name))
    return total


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent not idle since boot."""
    with contextlib.suppress(OSError, ValueError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return (sum(values[:8]) - idle) / TICKS
    return 0.0


def snapshot(processes: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each started process tree, of the named servers, of this process's load
    generators (forked clients and wrk, once waited for) and of the whole machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {name: tree_cpu(pid) for name, pid in processes.items()}
    out.update({name: named_cpu(names) for name, names in NAMED.items()})
    out["load generator"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    out["machine"] = machine_busy()
    out["wall"] = time.monotonic()
    return out


def per_unit(before: dict[str, float], after: dict[str, float], units: int) -> dict[str, float] | None:
    """Milliseconds of CPU per unit (a booking) of each part between two snapshots; `other` is what the
    machine spent beyond the parts named (other tenants of a shared machine), `idle` what it left unused."""
    if units <= 0:
        return None
    spent = {name: max(0.0, after[name] - before[name]) for name in before if name not in ("machine", "wall")}
    busy = after["machine"] - before["machine"]
    capacity = (after["wall"] - before["wall"]) * (os.cpu_count() or 1)
    out = {name: round(seconds * 1000 / units, 2) for name, seconds in spent.items()}
    out["other"] = round(max(0.0, busy - sum(spent.values())) * 1000 / units, 2)
    out["idle"] = round(max(0.0, capacity - busy) * 1000 / units, 2)
    return out
