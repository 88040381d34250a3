"""`make run`'s one process: HTTP on a pool of request threads (opd.asgi: Django's WSGI handler through
a2wsgi) and websockets on the in-memory channel layer, in one uvicorn process. Changes made through its
HTTP API reach its own sockets: the request threads hand their group sends to the server's event loop
(opd.core.channel_send), where the in-memory layer's queues live."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import connect

from tests.conftest import token_for

from .asgi_server import asgi_server, post
from .queue_helpers import booked, isolate_channel_layer, move_to_daytime_zone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 10
CHECK_INS = 12

# No REDIS_URL: the embedded default's in-memory channel layer and local-memory cache (the test settings
# insist on Redis unless told this is the embedded default). The database stays the test's MariaDB, so the
# test can write the day it needs; the layer is what this test is about.
EMBEDDED = {
    "REDIS_URL": "",
    "OPD_TEST_EMBEDDED": "1",
    "CELERY_BROKER_URL": "memory://",
    "OPD_ASGI_HTTP_THREADS": "4",
}


def test_http_changes_from_many_request_threads_reach_a_socket_of_the_same_process(
    settings, staff_user, doctor, department, clinic
):
    move_to_daytime_zone(clinic)  # the server runs in its own process, on the real clock
    prefix = isolate_channel_layer(settings)
    appointments = [booked(staff_user, doctor, department, minutes=5 + n) for n in range(CHECK_INS)]
    reception = token_for(staff_user)

    with (
        asgi_server(prefix, environ=EMBEDDED) as server,
        connect(
            f"{server.ws_url}/ws/queue/clinic/{clinic.pk}/",
            origin=server.url,
            subprotocols=["opd-token", reception],  # type: ignore[list-item]
            open_timeout=WAIT,
        ) as display,
    ):
        start = json.loads(display.recv(timeout=WAIT))
        assert start["type"] == "snapshot"
        version = start["version"]

        # Reception checks everyone in at once, from four connections: four request threads sending.
        def check_in(appointment_id: int) -> int:
            status, body = post(
                f"{server.url}/api/v1/appointments/{appointment_id}/check-in/", token=reception
            )
            assert status == 200, body
            return appointment_id

        with ThreadPoolExecutor(max_workers=4) as pool:
            done = list(pool.map(check_in, [a.pk for a in appointments]))
        assert len(done) == CHECK_INS

        # Every change reaches the socket, in version order: as events, or (had two requests' messages
        # crossed) as a fresh snapshot that holds them. Nothing is waited for in vain.
        checked_in: set[int] = set()
        while version < start["version"] + CHECK_INS:
            frame = json.loads(display.recv(timeout=WAIT))
            if frame["type"] == "event":
                assert frame["version"] == version + 1, frame
                assert frame["action"] == "checked_in"
                checked_in.add(frame["appointment_id"])
            else:
                assert frame["type"] == "snapshot", frame
                waiting = [e for line in frame["snapshot"]["doctors"] for e in line["waiting"]]
                checked_in |= {e["appointment_id"] for e in waiting}
            version = frame["version"]
        assert checked_in == {a.pk for a in appointments}
