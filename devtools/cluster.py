"""Several nodes on one machine: nginx in front of two gunicorn and two ASGI nodes, a Celery worker and a
beat on each node (`make cluster`, `manage.py cluster`, and the multi-node tests).

Each "node" is a set of processes on its own loopback ports; everything they share lives in MariaDB and
Redis, as it would across machines. The supervisor restarts a process that exits (as systemd's
Restart=always would), so a node killed on purpose comes back; Ctrl-C or SIGTERM stops them all.

Ports from `base` (8000 for make cluster): nginx base, gunicorn base+10 and base+11, ASGI base+20 and
base+21. The supervisor writes `cluster.json` in its folder once every node answers: the processes, their
pids (a gunicorn's is its master's; each process leads its own process group, so killing a group kills
the node's workers too) and the address to use.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "opd.conf.template"
NODES = ("a", "b")
RESTART_DELAY = 1.0
READY_TIMEOUT = 60.0
# Debian's package puts it in /usr/sbin, which is not on every user's PATH.
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Layout:
    folder: Path
    host: str = "127.0.0.1"
    base: int = 8000
    gunicorn_workers: int = 2
    celery_concurrency: int = 2
    celery: bool = True
    beat: bool = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.base}"

    def gunicorn_port(self, index: int) -> int:
        return self.base + 10 + index

    def asgi_port(self, index: int) -> int:
        return self.base + 20 + index


def nginx_config(layout: Layout) -> str:
    def servers(ports: list[int]) -> str:
        return "\n".join(
            f"        server {layout.host}:{port} max_fails=1 fail_timeout=5s;" for port in ports
        )

    replacements = {
        "@PREFIX@": str(layout.folder),
        "@LISTEN@": f"{layout.host}:{layout.base}",
        "@HTTP_SERVERS@": servers([layout.gunicorn_port(i) for i in range(len(NODES))]),
        "@WS_SERVERS@": servers([layout.asgi_port(i) for i in range(len(NODES))]),
        "@WORKER_PROCESSES@": "1",
    }
    text = TEMPLATE.read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    return text


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # What answers once the process serves (None: running is enough).
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0


def processes(layout: Layout) -> list[Process]:
    bin_dir = Path(sys.executable).parent
    folder = layout.folder
    found: list[Process] = [
        Process(
            "nginx",
            [NGINX, "-p", str(folder), "-e", str(folder / "nginx-error.log"), "-c", str(folder / "nginx.conf"),
             "-g", "daemon off;"],
            ready_url=f"{layout.url}/healthz",
        )
    ]  # fmt: skip
    for index, node in enumerate(NODES):
        gunicorn_port, asgi_port = layout.gunicorn_port(index), layout.asgi_port(index)
        found.append(
            Process(
                f"gunicorn-{node}",
                [str(bin_dir / "gunicorn"), "opd.wsgi:application", "--bind", f"{layout.host}:{gunicorn_port}",
                 "--workers", str(layout.gunicorn_workers), "--pid", str(folder / f"gunicorn-{node}.pid"),
                 "--no-control-socket", "--access-logfile", "-", "--graceful-timeout", "20"],
                # Persistent connections double WSGI throughput (DESIGN.md, Serving).
                env={"CONN_MAX_AGE": "60"},
                ready_url=f"http://{layout.host}:{gunicorn_port}/healthz",
            )
        )  # fmt: skip
        found.append(
            Process(
                f"asgi-{node}",
                [str(bin_dir / "uvicorn"), "opd.asgi:application", "--host", layout.host, "--port", str(asgi_port),
                 "--lifespan", "off", "--ws-per-message-deflate", "false", "--proxy-headers", "--log-level", "warning"],
                env={"CONN_MAX_AGE": "0"},
                ready_url=f"http://{layout.host}:{asgi_port}/healthz",
            )
        )  # fmt: skip
        if layout.celery:
            found.append(
                Process(
                    f"worker-{node}",
                    ["nice", "-n", "10", str(bin_dir / "celery"), "-A", "opd", "worker", "--loglevel=INFO",
                     f"--concurrency={layout.celery_concurrency}", f"--hostname={node}@%h"],
                    env={"CONN_MAX_AGE": "0"},
                )
            )  # fmt: skip
        if layout.beat:
            # A beat on every node; the leader lock (opd.core.beat) lets one send.
            found.append(
                Process(
                    f"beat-{node}",
                    [str(bin_dir / "celery"), "-A", "opd", "beat", "--loglevel=INFO",
                     "--scheduler=opd.core.beat:LeaderDatabaseScheduler",
                     f"--pidfile={folder / f'beat-{node}.pid'}", f"--schedule={folder / f'beat-{node}.schedule'}"],
                    env={"CONN_MAX_AGE": "0"},
                )
            )  # fmt: skip
    return found


def _die_with_parent() -> None:
    # Start a new process group (a node is killed as a whole) and take SIGTERM if the supervisor dies,
    # so a supervisor killed with SIGKILL leaves no orphan servers on the ports.
    os.setpgid(0, 0)
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our loopback nodes)
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Supervisor:
    def __init__(self, layout: Layout, *, say: Callable[[str], None] = print) -> None:
        self.layout = layout
        self.say = say
        self.processes = processes(layout)
        self.stopping = False
        self.base_env = {
            **os.environ,
            # nginx is the one proxy in front: its X-Forwarded-For names the client (rate limits, audit).
            "OPD_NUM_PROXIES": os.environ.get("OPD_NUM_PROXIES", "1"),
            # Pages open websockets on their own origin; nginx routes /ws/ to the ASGI nodes.
            "WEBSOCKET_BASE_URL": os.environ.get("WEBSOCKET_BASE_URL", ""),
            "PYTHONUNBUFFERED": "1",
        }

    def prepare(self) -> None:
        folder = self.layout.folder
        for sub in ("tmp", "logs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "nginx.conf").write_text(nginx_config(self.layout))
        (folder / "cluster.json").unlink(missing_ok=True)

    def spawn(self, process: Process) -> None:
        log = (self.layout.folder / "logs" / f"{process.name}.log").open("ab")
        process.popen = subprocess.Popen(  # noqa: S603 (our own servers, fixed arguments)
            process.argv,
            cwd=ROOT,
            env={**self.base_env, **process.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            # preexec_fn is safe here: the supervisor runs no threads.
            preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = [p for p in self.processes if p.ready_url]
        while waiting and not self.stopping:
            for process in list(waiting):
                if process.popen is None or process.popen.poll() is not None:
                    code = process.popen.returncode if process.popen else None
                    raise RuntimeError(f"{process.name} exited with {code}: {self.log_tail(process)}")
                if _answers(process.ready_url or ""):
                    waiting.remove(process)
            if time.monotonic() > deadline:
                raise RuntimeError("not ready in time: " + ", ".join(p.name for p in waiting))
            time.sleep(0.2)

    def log_tail(self, process: Process) -> str:
        path = self.layout.folder / "logs" / f"{process.name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def write_state(self) -> None:
        state = {
            "url": self.layout.url,
            "ws_url": self.layout.url.replace("http", "ws", 1),
            "supervisor": os.getpid(),
            "processes": {
                p.name: {"pid": p.popen.pid if p.popen else None, "restarts": p.restarts}
                for p in self.processes
            },
        }
        tmp = self.layout.folder / "cluster.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.layout.folder / "cluster.json")

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.prepare()
        try:
            for process in self.processes:
                self.spawn(process)
            self.wait_ready()
            if self.stopping:
                return 0
            self.write_state()
            self.say(f"cluster ready on {self.layout.url} (logs in {self.layout.folder / 'logs'})")
            while not self.stopping:
                self.restart_exited()
                time.sleep(0.2)
            return 0
        finally:
            self.terminate_all()

    def restart_exited(self) -> None:
        for process in self.processes:
            if process.popen is None or process.popen.poll() is None:
                continue
            code = process.popen.returncode
            # A killed gunicorn's workers notice their master is gone and exit on their own; the group is
            # signalled anyway so the port is free before the new one binds.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            self.say(f"{process.name} exited ({code}); restarting in {RESTART_DELAY:.0f} s")
            time.sleep(RESTART_DELAY)
            process.restarts += 1
            self.spawn(process)
            self.write_state()

    def terminate_all(self) -> None:
        running = [p.popen for p in self.processes if p.popen is not None and p.popen.poll() is None]
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 25
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        (self.layout.folder / "cluster.json").unlink(missing_ok=True)
