"""opd.core.group_hub on the real channel layers: a process is one member of a group however many of its
sockets joined, every local member gets every message once and in order, the membership ends with the
last member and outlives the layer's group_expiry. Each scenario runs on an event loop of its own, as
tests and servers do; the sockets' side (consumers over two server processes) is in
tests/scheduling/test_ws_fanout.py."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from channels.layers import get_channel_layer

from opd.core.group_hub import hub_for
from tests.scheduling.queue_helpers import isolate_channel_layer, run_scenario

WAIT = 10
GROUP = "queue.clinic.1"


@pytest.fixture(params=["redis", "in-memory"])
def layer(request, settings):
    if request.param == "redis":
        isolate_channel_layer(settings)
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


def members_in_redis(layer, group: str) -> int:
    client = redis.Redis.from_url(str(layer.hosts[0]["address"]))
    try:
        return int(client.zcard(f"{layer.prefix}:group:{group}"))
    finally:
        client.close()


def members_in_layer(layer, group: str) -> int:
    if hasattr(layer, "groups"):  # the in-memory layer
        return len(layer.groups.get(group, {}))
    return members_in_redis(layer, group)


async def drain(inbox: asyncio.Queue, count: int) -> list[int]:
    return [(await asyncio.wait_for(inbox.get(), WAIT))["n"] for _ in range(count)]


def test_every_local_member_gets_each_message_once_and_in_order(layer):
    async def scenario() -> tuple[list[list[int]], int, list[int]]:
        hub = hub_for(layer)
        inboxes: list[asyncio.Queue] = [asyncio.Queue() for _ in range(5)]
        # Joined side by side, as sockets opening at once do: one membership is made, all wait for it.
        await asyncio.gather(*(hub.join(GROUP, inbox) for inbox in inboxes))
        for n in range(1, 21):
            await layer.group_send(GROUP, {"type": "queue.event", "n": n})
        seen = [await drain(inbox, 20) for inbox in inboxes]
        # Nothing more arrives: no member was given a message twice.
        await layer.group_send(GROUP, {"type": "queue.event", "n": 99})
        after = [await drain(inbox, 1) for inbox in inboxes]
        extra = sum(inbox.qsize() for inbox in inboxes)
        for inbox in inboxes:
            await hub.leave(GROUP, inbox)
        return seen, extra, [n for (n,) in after]

    seen, extra, after = run_scenario(scenario)
    assert seen == [list(range(1, 21))] * 5
    assert after == [99] * 5
    assert extra == 0


def test_the_process_is_one_member_of_the_group_until_its_last_member_leaves(layer):
    async def scenario() -> list[int]:
        hub = hub_for(layer)
        inboxes: list[asyncio.Queue] = [asyncio.Queue() for _ in range(3)]
        counts = [members_in_layer(layer, GROUP)]
        for inbox in inboxes:
            await hub.join(GROUP, inbox)
        counts.append(members_in_layer(layer, GROUP))
        await hub.leave(GROUP, inboxes[0])
        await hub.leave(GROUP, inboxes[1])
        counts.append(members_in_layer(layer, GROUP))
        # The one left still hears the group...
        await layer.group_send(GROUP, {"type": "queue.event", "n": 1})
        counts.append(len(await drain(inboxes[2], 1)))
        await hub.leave(GROUP, inboxes[2])
        counts.append(members_in_layer(layer, GROUP))
        # ...and once it left, a message to the group goes nowhere here.
        await layer.group_send(GROUP, {"type": "queue.event", "n": 2})
        await asyncio.sleep(0.2)
        counts.append(sum(inbox.qsize() for inbox in inboxes))
        return counts

    assert run_scenario(scenario) == [0, 1, 1, 1, 0, 0]


def test_a_group_joined_again_on_a_new_event_loop_is_heard_there(layer):
    # Each test (and each of channels' test communicators) runs its own loop: a hub, its reader and its
    # futures belong to the loop that made them, and a later loop gets a hub of its own.
    async def one_round(n: int) -> list[int]:
        hub = hub_for(layer)
        inbox: asyncio.Queue = asyncio.Queue()
        await hub.join(GROUP, inbox)
        await layer.group_send(GROUP, {"type": "queue.event", "n": n})
        seen = await drain(inbox, 1)
        if n == 1:
            return seen  # left joined as the loop ends: a test that stopped midway
        await hub.leave(GROUP, inbox)
        return seen

    assert run_scenario(lambda: one_round(1)) == [1]
    assert run_scenario(lambda: one_round(2)) == [2]


@pytest.mark.slow
def test_a_membership_outlives_the_layers_group_expiry(settings):
    isolate_channel_layer(settings)
    config = settings.CHANNEL_LAYERS["default"]
    expiry = 2
    settings.CHANNEL_LAYERS = {"default": {**config, "CONFIG": {**config["CONFIG"], "group_expiry": expiry}}}
    layer = get_channel_layer()

    async def scenario() -> tuple[list[int], int]:
        hub = hub_for(layer)
        inbox: asyncio.Queue = asyncio.Queue()
        await hub.join(GROUP, inbox)
        # A socket's own channel that joined at the same moment, as every socket did before the hub.
        plain = await layer.new_channel()
        await layer.group_add(GROUP, plain)
        # channels-redis drops members older than group_expiry (whole seconds) at the next send.
        await asyncio.sleep(expiry + 1.5)
        await layer.group_send(GROUP, {"type": "queue.event", "n": 1})
        seen = await drain(inbox, 1)
        try:
            await asyncio.wait_for(layer.receive(plain), 0.5)
            plain_heard = 1
        except TimeoutError:
            plain_heard = 0
        await hub.leave(GROUP, inbox)
        return seen, plain_heard

    started = time.monotonic()
    seen, plain_heard = run_scenario(scenario)
    assert time.monotonic() - started > expiry  # the expiry really went by
    assert plain_heard == 0, "a plain member is dropped after group_expiry (else this test proves nothing)"
    assert seen == [1]
