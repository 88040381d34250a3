"""opd.core.channel_send on the embedded default's in-memory channel layer (`make run`): a send from a
request thread is handed to the server's event loop, where the layer's queues and their waiters live.

The "server" here is an event loop in a thread of its own with a consumer-like receiver waiting on its
channel and nothing else to do, as an idle `make run` is. A send made from the request thread's own loop
would set the waiter's result from the wrong thread and never wake the idle loop; through the handoff the
receiver gets every message, in order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer

from opd.core import channel_send
from tests.scheduling.queue_helpers import run_scenario

WAIT = 10


@pytest.fixture
def server_loop(settings) -> Iterator[asyncio.AbstractEventLoop]:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="server-loop", daemon=True)
    thread.start()
    channel_send.bind_server_loop(loop)
    yield loop
    channel_send._server_loop = None
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=WAIT)
    loop.close()


def test_sends_from_request_threads_reach_a_receiver_on_the_idle_server_loop(server_loop):
    layer = get_channel_layer()
    received: concurrent.futures.Future[list[int]] = concurrent.futures.Future()

    async def join_and_receive(count: int) -> None:
        channel = await layer.new_channel()
        await layer.group_add("queue.clinic.1", channel)
        joined.set()
        seen = [(await layer.receive(channel))["n"] for _ in range(count)]
        received.set_result(seen)

    joined = threading.Event()
    asyncio.run_coroutine_threadsafe(join_and_receive(6), server_loop)
    assert joined.wait(WAIT)

    # Three request threads, each sending two changes in order, one after the other.
    def send(environ, start_response) -> None:
        first = environ["first"]
        channel_send.group_send_many(
            [("queue.clinic.1", {"type": "queue.event", "n": n}) for n in (first, first + 1)]
        )

    request_app = channel_send.serving_requests(send)  # as opd.asgi runs Django on its request threads

    def request(first: int) -> None:
        request_app({"first": first}, None)

    for first in (1, 3, 5):
        thread = threading.Thread(target=request, args=(first,))
        thread.start()
        thread.join()

    assert received.result(timeout=WAIT) == [1, 2, 3, 4, 5, 6]


def test_without_a_server_loop_it_sends_from_its_own(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("queue.doctor.1", channel)
        # A Celery task or gunicorn worker: sync code with no loop of its own, called from a thread.
        await asyncio.get_running_loop().run_in_executor(
            None, channel_send.group_send, "queue.doctor.1", {"type": "queue.event", "n": 1}
        )
        return await asyncio.wait_for(layer.receive(channel), WAIT)

    assert run_scenario(scenario)["n"] == 1


def test_a_thread_that_is_not_serving_a_request_never_hands_its_send_to_the_bound_loop(server_loop):
    # A loop bound earlier in the process (here one that is running but never reads its queue again) is
    # not where a test's, a command's or any other thread's sends go: they send on a loop of their own.
    layer = get_channel_layer()

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("queue.doctor.2", channel)
        await asyncio.get_running_loop().run_in_executor(
            None, channel_send.group_send, "queue.doctor.2", {"type": "queue.event", "n": 7}
        )
        return await asyncio.wait_for(layer.receive(channel), WAIT)

    assert run_scenario(scenario)["n"] == 7
