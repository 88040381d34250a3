"""Fan-out: many sockets on one clinic's queue over two real ASGI processes sharing the Redis channel
layer; every change reaches every socket, none is dropped, also after the queue was quiet for longer than
channels-redis's blocking pop (5 s), which used to end one socket per process (opd.settings.base,
CHANNELS_SOCKET_TIMEOUT). The bench measures the same path with 1,000 sockets (devtools.bench.fanout)."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
from websockets.asyncio.client import connect

from scheduling.realtime import group_name
from scheduling.selectors import CLINIC_QUEUE, queue_name
from tests.conftest import token_for, wait_until
from tests.scheduling.queue_helpers import run_scenario

from .asgi_server import asgi_server, post
from .queue_helpers import booked, isolate_channel_layer, move_to_daytime_zone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SOCKETS = 100
CHANGES = 3
WAIT = 15
# Longer than channels-redis's 5 s blocking pop: the quiet spell in which sockets used to be dropped.
QUIET_SECONDS = 6.5


def test_every_change_reaches_every_socket_of_two_processes_after_a_quiet_spell(
    settings, staff_user, doctor, department, clinic
):
    move_to_daytime_zone(clinic)  # the servers run in their own processes, on the real clock
    prefix = isolate_channel_layer(settings)
    appointment_ids = [booked(staff_user, doctor, department, minutes=5 + n).pk for n in range(CHANGES)]
    reception = token_for(staff_user)

    with asgi_server(prefix) as one, asgi_server(prefix) as two:

        async def scenario() -> tuple[int, list[list[int]], list[str]]:
            urls = [one.ws_url, two.ws_url]
            opening = asyncio.Semaphore(20)

            async def open_one(n: int):
                async with opening:
                    return await connect(
                        f"{urls[n % 2]}/ws/queue/clinic/{clinic.pk}/",
                        origin=one.url,
                        subprotocols=["opd-token", reception],  # type: ignore[list-item]
                        ping_interval=None,  # as a browser: it answers the server's pings, sends none
                        open_timeout=WAIT,
                    )

            sockets = await asyncio.gather(*(open_one(n) for n in range(SOCKETS)))
            starts = [json.loads(await asyncio.wait_for(ws.recv(), WAIT))["version"] for ws in sockets]
            assert len(set(starts)) == 1, "every socket starts from the same snapshot"
            await asyncio.sleep(QUIET_SECONDS)

            await check_in_all(one.url, appointment_ids, reception)

            async def versions_seen(ws) -> list[int]:
                seen: list[int] = []
                while not seen or seen[-1] < starts[0] + CHANGES:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                    if frame["type"] in ("event", "snapshot"):
                        seen.append(frame["version"])
                return seen

            results = await asyncio.gather(*(versions_seen(ws) for ws in sockets), return_exceptions=True)
            problems = [repr(r) for r in results if isinstance(r, BaseException)]
            seen = [r for r in results if not isinstance(r, BaseException)]
            for ws in sockets:
                await ws.close()
            return starts[0], seen, problems

        start, seen, problems = run_scenario(scenario)

    # No socket was closed or left waiting, and each saw every version, in order (the server replaces
    # an event that would leave a gap with a snapshot, which would show here as a skipped number).
    assert problems == [], problems[:3]
    assert len(seen) == SOCKETS
    expected = [start + n for n in range(1, CHANGES + 1)]
    assert all(versions == expected for versions in seen), [v for v in seen if v != expected][:3]


def test_each_process_is_one_member_of_the_queue_group_whatever_its_sockets(
    settings, staff_user, doctor, department, clinic
):
    # opd.core.group_hub: six sockets on each of two processes make two members of the clinic's queue
    # group in Redis, each socket still gets every change once and in order, and when the sockets close
    # the group is empty.
    move_to_daytime_zone(clinic)
    prefix = isolate_channel_layer(settings)
    appointment_ids = [booked(staff_user, doctor, department, minutes=5 + n).pk for n in range(CHANGES)]
    reception = token_for(staff_user)
    client = redis.Redis.from_url(settings.REDIS_URL)
    group_key = f"{prefix}:group:{group_name(queue_name(CLINIC_QUEUE, clinic.pk))}"
    per_process = 6

    with asgi_server(prefix) as one, asgi_server(prefix) as two:

        async def scenario() -> tuple[int, int, list[list[int]]]:
            sockets = [
                await connect(
                    f"{server.ws_url}/ws/queue/clinic/{clinic.pk}/",
                    origin=one.url,
                    subprotocols=["opd-token", reception],  # type: ignore[list-item]
                    open_timeout=WAIT,
                )
                for server in (one, two)
                for _ in range(per_process)
            ]
            starts = [json.loads(await asyncio.wait_for(ws.recv(), WAIT))["version"] for ws in sockets]
            members = client.zcard(group_key)
            await check_in_all(two.url, appointment_ids, reception)
            seen: list[list[int]] = []
            for ws, start in zip(sockets, starts, strict=True):
                versions = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(CHANGES)]
                seen.append([frame["version"] - start for frame in versions if frame["type"] == "event"])
            for ws in sockets:
                await ws.close()
            return members, len(set(starts)), seen

        members, distinct_starts, seen = run_scenario(scenario)
        assert members == 2
        assert distinct_starts == 1
        assert seen == [list(range(1, CHANGES + 1))] * (2 * per_process)
        # The last socket of each process gone, the process left the group.
        wait_until(lambda: client.zcard(group_key) == 0, timeout=WAIT, what="the queue group to empty")
    client.close()


async def check_in_all(base_url: str, appointment_ids: list[int], token: str) -> None:
    """Reception checks each patient in through `base_url`'s API, one after the other (off the loop)."""
    loop = asyncio.get_running_loop()
    for appointment_id in appointment_ids:
        status, body = await loop.run_in_executor(
            None, lambda a=appointment_id: post(f"{base_url}/api/v1/appointments/{a}/check-in/", token=token)
        )
        assert status == 200, body
