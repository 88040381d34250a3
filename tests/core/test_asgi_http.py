"""The embedded server's HTTP path (opd.core.asgi_http): what a client gets is the WSGI application's answer,
whole and in order, for small and large requests and answers; a large answer still streams while the
application produces it; a client that goes away ends the application's iteration instead of hanging it.
The ASGI side is driven directly (the protocol's receive and send); `make run`'s real server on the same
path is in tests/scheduling/test_embedded_server.py."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

from opd.core.asgi_http import FLUSH_BYTES, PREREAD_BYTES, BufferedWSGIMiddleware

WAIT = 10


def scope(method: str = "GET", body_length: int | None = None) -> dict:
    headers = [(b"host", b"testserver")]
    if body_length is not None:
        headers.append((b"content-length", str(body_length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/x/",
        "raw_path": b"/x/",
        "query_string": b"a=1",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def serve(app, request_scope: dict, chunks: list[bytes], *, on_send=None) -> list[dict]:
    """Run one request through the middleware; returns the ASGI messages the client was sent."""
    sent: list[dict] = []

    async def scenario() -> list[dict]:
        middleware = BufferedWSGIMiddleware(app, workers=2)
        incoming = [
            {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
            for n, chunk in enumerate(chunks or [b""])
        ]

        async def receive() -> dict:
            if incoming:
                return incoming.pop(0)
            await asyncio.sleep(3600)  # a client that sent everything waits for the answer
            raise AssertionError("unreachable")

        async def send(message: dict) -> None:
            sent.append(message)
            if on_send is not None:
                await on_send(message, sent)

        try:
            await asyncio.wait_for(middleware(request_scope, receive, send), WAIT)
        finally:
            middleware.executor.shutdown(wait=False)
        return sent

    return asyncio.run(scenario())


def body_of(messages: list[dict]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_a_small_answer_arrives_with_its_status_headers_and_body():
    def app(environ, start_response):
        assert environ["QUERY_STRING"] == "a=1"
        start_response("201 Created", [("Content-Type", "application/json"), ("X-Request-Id", "r1")])
        return [b'{"ok":', b"true}"]

    messages = serve(app, scope(), [])
    assert messages[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"r1")],
    }
    assert body_of(messages) == b'{"ok":true}'
    assert messages[-1] == {"type": "http.response.body", "body": b""}  # the answer ends


@pytest.mark.parametrize(
    ("size", "chunk"),
    [
        (0, 1),
        (10, 10),
        (64 * 1024, 4096),
        (PREREAD_BYTES, 65536),
        (PREREAD_BYTES + 1, 65536),
        (3 << 20, 1 << 20),
    ],
)
def test_a_request_body_of_any_size_reaches_the_application_whole(size, chunk):
    data = bytes(n % 251 for n in range(size))
    pieces = [data[i : i + chunk] for i in range(0, size, chunk)] or [b""]

    def app(environ, start_response):
        got = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{len(got)} {hashlib.sha256(got).hexdigest()}".encode()]

    messages = serve(app, scope("POST", size), pieces)
    assert body_of(messages).decode() == f"{size} {hashlib.sha256(data).hexdigest()}"


def test_a_large_answer_streams_while_the_application_still_produces_it():
    first_piece_sent = threading.Event()
    total = 4 * FLUSH_BYTES
    block = b"x" * 4096

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/csv")])
        produced = 0
        while produced < total:
            if produced == 2 * FLUSH_BYTES:
                # Half-way: the client must already have part of the answer (a download streams).
                assert first_piece_sent.wait(WAIT), "nothing was sent before the answer was complete"
            yield block
            produced += len(block)

    async def on_send(message, sent):
        if message["type"] == "http.response.body" and message.get("body"):
            first_piece_sent.set()

    messages = serve(app, scope(), [], on_send=on_send)
    assert body_of(messages) == b"x" * total
    assert messages[0]["type"] == "http.response.start"


def test_a_client_that_goes_away_ends_a_large_answer_instead_of_hanging_it():
    produced = []
    closed = threading.Event()

    class Endless:
        def __iter__(self):
            while True:
                produced.append(1)
                yield b"y" * 65536

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()

    async def on_send(message, sent):
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        serve(app, scope(), [], on_send=on_send)
    assert closed.wait(WAIT)  # the application's answer was closed (Django ends its request there)
    assert len(produced) * 65536 < 4 * FLUSH_BYTES  # it stopped soon after the first piece failed


def test_an_error_in_the_application_reaches_the_server():
    def app(environ, start_response):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        serve(app, scope(), [])


def test_requests_run_side_by_side_on_the_request_threads():
    # Two requests at once: each waits for the other to have started, so this only ends if they run in
    # two threads at the same time (the pool of OPD_ASGI_HTTP_THREADS).
    barrier = threading.Barrier(2, timeout=WAIT)

    def app(environ, start_response):
        barrier.wait()
        start_response("200 OK", [])
        return [b"done"]

    async def scenario() -> list[bytes]:
        middleware = BufferedWSGIMiddleware(app, workers=2)

        async def one() -> bytes:
            sent: list[dict] = []

            async def receive() -> dict:
                await asyncio.sleep(3600)
                raise AssertionError("unreachable")

            async def send(message: dict) -> None:
                sent.append(message)

            await middleware(scope(), receive, send)
            return body_of(sent)

        try:
            return list(await asyncio.wait_for(asyncio.gather(one(), one()), WAIT))
        finally:
            middleware.executor.shutdown(wait=False)

    assert asyncio.run(scenario()) == [b"done", b"done"]
