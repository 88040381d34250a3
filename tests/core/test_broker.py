"""The broker transport (opd.core.broker): kombu's Redis transport, publishing through one client."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from opd.celery import app as celery_app
from opd.core.broker import Transport


@pytest.fixture
def queue():
    name = f"opd-test-broker-{uuid.uuid4().hex}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete(name)


def waiting(queue: str) -> list[list]:
    """The argument lists of the task messages in `queue` on the real Redis, oldest first."""
    with celery_app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange(queue, 0, -1)
    return [
        json.loads(json.loads(m)["headers"]["argsrepr"].replace("(", "[").replace(",)", "]")) for m in raw
    ][::-1]


def test_celery_publishes_through_the_projects_transport_on_a_redis_broker():
    with celery_app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)


# send_task always publishes to the broker, which is what this test reads; the test settings' eager mode
# only makes Celery say so.
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_messages_sent_from_several_threads_all_arrive_in_each_threads_order(queue):
    def send(first: int) -> None:
        for n in range(first, first + 20):
            celery_app.send_task("opd.test.nothing", args=(n,), queue=queue)

    threads = [threading.Thread(target=send, args=(first,)) for first in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    got = [args[0] for args in waiting(queue)]
    assert sorted(got) == [*range(20), *range(100, 120), *range(200, 220)]
    for first in (0, 100, 200):
        assert [n for n in got if first <= n < first + 20] == list(range(first, first + 20))
