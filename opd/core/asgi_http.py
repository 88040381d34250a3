"""HTTP for the one ASGI process of the embedded default (`make run`): Django's WSGI handler on request
threads, with one hand-over between the event loop and a thread per request instead of one per message.

a2wsgi's responder hands every message of the answer (the status and headers, each body chunk, the
closing empty chunk) from the request thread to the loop and waits for the loop to take it: three or more
blocking cross-thread round trips per request, each a wake-up of the loop and of the thread and a turn of
the GIL, and reading a request's body was one more per chunk. Under load those hand-overs, not Django,
were most of the process's time (a py-spy profile of the ping view under wrk: the request threads spent
about 60 % of their samples waiting in `WSGIResponder.send`).

Here the loop reads a body of up to `PREREAD_BYTES` before the request goes to its thread, the thread
keeps the answer's messages until the answer is complete (or `FLUSH_BYTES` of body are waiting: a large
download still streams, in pieces of that size), and the loop sends what is left once the thread is done.
What the client sees is the same answer; only the number of hand-overs changes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ

# A body up to this size is read on the loop before the request's thread starts (one hand-over fewer per
# chunk); a larger one is read from the thread as it is consumed, as before.
PREREAD_BYTES = 1 << 20
# Answer bytes a request thread keeps before it hands them to the loop (a download of 10 MB streams).
FLUSH_BYTES = 256 << 10


class _BufferedResponder(WSGIResponder):
    def __init__(self, app: Any, executor: Any) -> None:
        # An unbounded queue: the thread hands over at most FLUSH_BYTES at a time and then waits until the
        # loop has sent them (`_hand_over`), which is the back-pressure a bounded queue gave.
        super().__init__(app, executor, 0)
        self.pending: list[dict[str, Any]] = []
        self.pending_bytes = 0
        self.sender_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = Body(self.loop, receive)
        await self._preread(body, scope)
        environ = build_environ(scope, body)
        sender = self.sender_task = self.loop.create_task(self.sender(send))
        try:
            context = contextvars.copy_context()
            try:
                await self.loop.run_in_executor(
                    self.executor, functools.partial(context.run, self.wsgi, environ, self.start_response)
                )
            finally:
                # What the thread kept (all of a small answer), in order after what it handed over.
                for message in self.pending:
                    self.send_queue.put_nowait(message)
                self.pending = []
                self.send_queue.put_nowait(None)
            await sender  # the sender's own failure (the client went away) surfaces here
            if self.exc_info is not None:
                raise self.exc_info[1].with_traceback(self.exc_info[2])
        finally:
            if not sender.done():
                sender.cancel()

    async def _preread(self, body: Body, scope: Any) -> None:
        """Read the request's body on the loop while it is small: the thread then finds it buffered."""
        length = next((value for name, value in scope.get("headers", ()) if name == b"content-length"), None)
        if length is None or not length.isdigit() or not 0 < int(length) <= PREREAD_BYTES:
            return  # no body, a large one, or none declared (chunked): read from the thread as it comes
        while body._has_more:
            message: dict[str, Any] = await body.receive()  # type: ignore[assignment]
            body.buffer.extend(message.get("body", b""))
            body._has_more = message["type"] == "http.request" and bool(message.get("more_body", False))

    def send(self, message: Any) -> None:
        """On the request thread: keep the message; hand what is kept to the loop only once a large answer
        has `FLUSH_BYTES` waiting (the loop sends the rest when the thread is done)."""
        self.pending.append(message)
        self.pending_bytes += len(message.get("body", b""))
        if self.pending_bytes >= FLUSH_BYTES:
            pending, self.pending, self.pending_bytes = self.pending, [], 0
            asyncio.run_coroutine_threadsafe(self._hand_over(pending), self.loop).result()

    async def _hand_over(self, messages: list[dict[str, Any]]) -> None:
        """Queue `messages` and wait until they are sent (or the sending failed: the client went away, and
        the thread gets the error, which ends the answer's iteration)."""
        for message in messages:
            self.send_queue.put_nowait(message)
        assert self.sender_task is not None  # noqa: S101  # made before the thread starts
        drained = asyncio.ensure_future(self.send_queue.join())
        try:
            await asyncio.wait([drained, self.sender_task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
        if self.sender_task.done():
            self.sender_task.result()  # raises the sender's error
            raise ConnectionResetError("the answer's sender ended before the answer did")


class BufferedWSGIMiddleware(WSGIMiddleware):
    """a2wsgi's WSGIMiddleware with the responder above for HTTP (lifespan and websocket scopes as a2wsgi)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _BufferedResponder(self.app, self.executor)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
