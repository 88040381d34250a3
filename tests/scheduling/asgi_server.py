"""Real ASGI server processes for tests: uvicorn serving opd.asgi on a free loopback port.

pytest-django's live_server is WSGI only (no websockets), so tests that need the real thing start
uvicorn as production runs it (CONN_MAX_AGE=0), on the test database (the test must use
django_db(transaction=True), so what it writes is committed and visible to the server) and on the test's
Redis channel layer prefix (queue_helpers.isolate_channel_layer), so the test process, the servers and
their websocket clients share one channel layer and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from tests.conftest import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
START_TIMEOUT = 30


@dataclass
class Server:
    url: str
    ws_url: str
    process: subprocess.Popen
    log: pathlib.Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(channels_prefix: str) -> dict[str, str]:
    """The environment of a server for this test: its database is the test database (with xdist, the
    worker's own), its channel layer prefix the test's."""
    current = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    database_url = current._replace(path="/" + connection.settings_dict["NAME"]).geturl()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opd.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CHANNELS_PREFIX": channels_prefix,
        "CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    # The browser tests allow sync ORM calls in an event loop for themselves; the server must not.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def _wait_until_ready(server: Server) -> None:
    def answers() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    wait_until(
        answers, timeout=START_TIMEOUT, interval=0.1, what=lambda: f"uvicorn to answer:\n{server.output()}"
    )


@contextlib.contextmanager
def asgi_server(
    channels_prefix: str, *, log_level: str = "warning", environ: dict[str, str] | None = None
) -> Iterator[Server]:
    """uvicorn on a free port; `environ` adds to (or overrides) the server's environment."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w", prefix="uvicorn-", suffix=".log", delete=False) as log:
        log_path = pathlib.Path(log.name)
    log_file = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "opd.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws-per-message-deflate",
            "false",
            "--log-level",
            log_level,
        ],
        cwd=ROOT,
        env={**server_env(channels_prefix), **(environ or {})},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        log_path.unlink(missing_ok=True)


def post(url: str, *, token: str, body: bytes = b"{}") -> tuple[int, bytes]:
    """POST with token authentication; (status, body) whatever the status."""
    request = urllib.request.Request(  # noqa: S310 (a loopback test server)
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
