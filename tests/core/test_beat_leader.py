"""Two real beat processes (one per node) on one database and Redis: each period's task is sent once.

Beat sends a one-second periodic entry to a queue of this test that no worker consumes, so the queue
holds exactly what was sent. Each beat logs what it sends, with a timestamp.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid

import pytest
import redis

from tests.conftest import wait_until
from tests.notifications.worker import Beat, broker_url, purge_queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PERIOD = 1.0
TTL = 4.0
SENT = re.compile(
    r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Scheduler: Sending due task cluster-tick"
)


class LeaderBeat(Beat):
    def arguments(self) -> list[str]:
        return ["beat", "--scheduler=opd.core.beat:LeaderDatabaseScheduler", *super().arguments()[2:]]

    def sends(self) -> list[dt.datetime]:
        return [dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in SENT.findall(self.log())]  # noqa: DTZ007 (both logs, one clock)


@pytest.fixture
def queue():
    name = f"beat-test-{uuid.uuid4().hex[:8]}"
    yield name
    purge_queue(name)


def test_two_beats_send_each_period_once_and_the_standby_takes_over_a_killed_leader(queue, tmp_path):
    key = f"opd-test-beat-leader-{queue}"
    overrides = {
        "CELERY_BEAT_SCHEDULE": {
            "cluster-tick": {
                "task": "core.purge_idempotency_records",
                "schedule": PERIOD,
                "options": {"queue": queue},
            }
        },
        "OPD_BEAT_LEADER_KEY": key,
        "OPD_BEAT_LEADER_TTL_SECONDS": TTL,
    }
    one = LeaderBeat(queue=queue, folder=tmp_path / "one", overrides=overrides).spawn()
    two = LeaderBeat(queue=queue, folder=tmp_path / "two", overrides=overrides).spawn()
    client = redis.Redis.from_url(broker_url())
    try:
        one.wait_ready()
        two.wait_ready()
        wait_until(lambda: len(one.sends()) + len(two.sends()) >= 3, timeout=30, what="three sends")
        # The lock names the process that sends now; the other waits.
        holder = int(client.get(key).decode().rsplit(":", 2)[1])
        leader, standby = (one, two) if holder == one.pid else (two, one)

        leader.kill()
        sent_before = len(standby.sends())
        wait_until(
            lambda: len(standby.sends()) >= sent_before + 2,
            timeout=30,
            what=lambda: f"the standby to send:\n{standby.log()}",
        )
        standby.stop()

        sends = sorted(leader.sends() + standby.sends())
        # What the beats logged is what reached the broker, and never two sends inside one period, the
        # takeover included (the standby read the leader's last run from the database). Two beats
        # sending each period would interleave: some gap would be half a period or less. Celery logs
        # "Sending due task" before it publishes, so the SIGKILL may land between the leader's last log
        # line and its publish: that one send may be missing from the queue, never one more.
        assert len(sends) - 1 <= client.llen(queue) <= len(sends), (client.llen(queue), sends)
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sends)]
        assert min(gaps) >= PERIOD * 0.8, gaps
        assert f"leader lock {key} taken by" in standby.log()
    finally:
        one.stop()
        two.stop()
        client.delete(key)
        client.close()
