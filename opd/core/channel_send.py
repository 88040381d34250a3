"""Channel-layer group sends from synchronous code (services' after-commit handlers, request threads,
Celery tasks), the one way every app sends them.

Where it runs decides how:
- Inside an ASGI server process whose event loop was recorded (`bind_server_loop`, done by opd.asgi on
  every connection) and on a thread other than that loop's: the send is handed to the server's loop with
  run_coroutine_threadsafe and waited for. `make run` answers HTTP on a pool of threads (opd.asgi) with the
  in-memory channel layer, whose queues belong to the server's loop: a send made from a request thread's
  own event loop would wake a consumer's waiter from the wrong thread (asyncio is not thread-safe), and
  the consumer might not run until some other I/O woke the loop. On the Redis layer it also reuses the
  server loop's Redis connections instead of opening them on a new loop per send.
- Anywhere else with no running loop in this thread (gunicorn, a Celery worker, a test): async_to_sync.
- Sync code running inside an event loop's own thread (a script driving a browser, say) cannot wait on
  the loop it blocks: the send goes from a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

# How long a request thread waits for the server's loop to take its send (the loop is never this busy
# unless it is stopping).
HANDOFF_TIMEOUT_SECONDS = 30

_server_loop: asyncio.AbstractEventLoop | None = None
# Set on the ASGI server's HTTP request threads while they run a request (opd.asgi): only they hand their
# sends to the server's loop. Any other thread (a test's, a management command's) sends as it always did,
# so a loop bound earlier in the process can never be handed a send it will not run.
_request_thread = threading.local()


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Record the ASGI server's event loop (opd.asgi calls this on each connection: a cheap assignment)."""
    global _server_loop  # one loop per server process
    _server_loop = loop


def serving_requests(wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the WSGI application the ASGI server runs on its request threads: while a request runs, its
    thread's channel-layer sends go to the server's loop."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        _request_thread.active = True
        try:
            return wsgi_app(environ, start_response)
        finally:
            _request_thread.active = False

    return app


def serving_thread() -> None:
    """Mark the current thread as one of the server's own for the rest of its life (the outbox's sender
    thread, which sends what requests committed): in an ASGI process its sends go to the server's loop,
    as a request thread's do."""
    _request_thread.active = True


def group_send_many(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each (group, message) in order; returns once all are sent."""
    if not messages or get_channel_layer() is None:
        return
    loop = _server_loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if (
        loop is not None
        and running is None
        and getattr(_request_thread, "active", False)
        and loop.is_running()
    ):
        asyncio.run_coroutine_threadsafe(_send_all(messages), loop).result(timeout=HANDOFF_TIMEOUT_SECONDS)
        return
    if running is None:
        async_to_sync(_send_all)(messages)
        return
    sender = threading.Thread(target=async_to_sync(_send_all), args=(messages,), name="group-send")
    sender.start()
    sender.join()


def group_send(group: str, message: dict[str, Any]) -> None:
    group_send_many([(group, message)])


async def _send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        await layer.group_send(group, message)
