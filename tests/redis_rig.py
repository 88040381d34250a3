"""Redis servers of a test's own, on the ports given to these tests: a plain one the test may stop and
start (tests/browser), and a primary with a replica watched by three sentinels (tests/core), so a test
can kill the primary while the shared Redis that other tests use goes on undisturbed.

Each server runs with `--daemonize no` as a child of the test process, in a temporary folder, without
persistence; stopping kills it by the pid we started.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.conftest import wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MASTER_NAME = "opd-test-primary"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """One redis-server (or sentinel) process on a fixed loopback port."""

    def __init__(self, port: int, folder: Path, *extra: str, config: str | None = None):
        self.port = port
        self.folder = folder
        self.extra = extra
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / f"redis-{port}.log"

    def start(self) -> RedisServer:
        # A server left by a crashed run would answer in its place: refuse to start on a taken port.
        wait_until(lambda: not port_open(self.port), timeout=10, what=f"port {self.port} to be free")
        if self.config is not None:
            # Sentinel rewrites its configuration file as it learns: each start gets a fresh one.
            conf = self.folder / f"sentinel-{self.port}.conf"
            conf.write_text(self.config)
            command = [REDIS_SERVER, str(conf), "--sentinel"]
        else:
            command = [REDIS_SERVER, "--save", "", "--appendonly", "no"]
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no"]
        command += ["--dir", str(self.folder), "--logfile", str(self.log), *self.extra]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603
        wait_until(self.answers, timeout=10, interval=0.05, what=f"redis on {self.port}")
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"redis on {self.port} exited:\n{self.log.read_text(errors='replace')[-3000:]}"
            )
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL, as when the machine it ran on is lost: no shutdown, no handover."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), timeout=10, what=f"port {self.port} to close")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[RedisServer]:
    folder = Path(tempfile.mkdtemp(prefix="opd-redis-"))
    server = RedisServer(port, folder)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class SentinelRig:
    """A primary, its replica and three sentinels (quorum two) that notice a dead primary within a second."""

    def __init__(self, primary: RedisServer, replica: RedisServer, sentinels: list[RedisServer]):
        self.primary = primary
        self.replica = replica
        self.sentinels = sentinels

    @property
    def addresses(self) -> str:
        """The value of REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def current_primary_port(self) -> int:
        """The primary's port as the sentinels report it."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                _host, port = redis.Redis(
                    port=sentinel.port, socket_timeout=1
                ).sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(port)
        raise RuntimeError("no sentinel answers")

    def replica_synced(self) -> bool:
        info = redis.Redis(port=self.replica.port, socket_timeout=1).info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def sentinels_agree(self) -> bool:
        """Every sentinel knows the replica and the two other sentinels: a failover can be voted."""
        for sentinel in self.sentinels:
            master = redis.Redis(port=sentinel.port, socket_timeout=1).sentinel_master(MASTER_NAME)
            if int(master["num-other-sentinels"]) < len(self.sentinels) - 1 or int(master["num-slaves"]) < 1:
                return False
        return True


@contextlib.contextmanager
def sentinel_rig(primary_port: int, replica_port: int, sentinel_ports: list[int]) -> Iterator[SentinelRig]:
    folder = Path(tempfile.mkdtemp(prefix="opd-sentinel-"))
    config = (
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n"
        # Seconds in production; a test wants the failover within a few seconds of the kill.
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
        f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n"
    )
    primary = RedisServer(primary_port, folder)
    replica = RedisServer(replica_port, folder, "--replicaof", "127.0.0.1", str(primary_port))
    sentinels = [RedisServer(port, folder, config=config) for port in sentinel_ports]
    started: list[RedisServer] = []
    try:
        for server in (primary, replica, *sentinels):
            started.append(server.start())
        rig = SentinelRig(primary, replica, sentinels)
        wait_until(rig.replica_synced, timeout=20, what="the replica to sync")
        wait_until(rig.sentinels_agree, timeout=30, interval=0.2, what="the sentinels to find each other")
        yield rig
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
