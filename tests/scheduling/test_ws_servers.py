"""Two real ASGI server processes sharing Redis: a change made through one reaches clients of both."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import token_for

from .asgi_server import asgi_server, post
from .queue_helpers import booked, isolate_channel_layer, move_to_daytime_zone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 10


def receive(ws) -> dict:
    return json.loads(ws.recv(timeout=WAIT))


def test_a_change_through_either_server_reaches_clients_of_both(
    settings, staff_user, doctor, department, clinic
):
    move_to_daytime_zone(clinic)  # the server runs in its own process, on the real clock
    prefix = isolate_channel_layer(settings)
    appt = booked(staff_user, doctor, department, minutes=15)
    reception = token_for(staff_user)
    doctors_token = token_for(doctor.user)

    # The doctor's dashboard on server one (a single-use ticket in the query, from server two: the ticket
    # lives in the shared cache), the waiting room on server two (token in the subprotocol header).
    # Server one logs every request and handshake (uvicorn's access log), to show no credential in it.
    with asgi_server(prefix, log_level="info") as one, asgi_server(prefix) as two:
        status, body = post(f"{two.url}/api/v1/auth/ws-ticket/", token=doctors_token)
        assert status == 201, body
        ticket = json.loads(body)["ticket"]
        with (
            connect(
                f"{one.ws_url}/ws/queue/doctor/{doctor.pk}/?ticket={ticket}",
                origin=one.url,
                open_timeout=WAIT,
            ) as dashboard,
            connect(
                f"{two.ws_url}/ws/queue/clinic/{clinic.pk}/",
                origin=two.url,
                subprotocols=["opd-token", reception],
                open_timeout=WAIT,
            ) as display,
        ):
            assert display.subprotocol == "opd-token"
            dashboard_version = receive(dashboard)["version"]
            display_version = receive(display)["version"]

            # Reception checks the patient in through server two's API...
            status, body = post(f"{two.url}/api/v1/appointments/{appt.pk}/check-in/", token=reception)
            assert status == 200, body
            token_label = json.loads(body)["token_label"]

            # ...and both hear it: the dashboard's client is connected to the other server.
            on_dashboard, on_display = receive(dashboard), receive(display)
            assert (on_dashboard["type"], on_dashboard["action"]) == ("event", "checked_in")
            assert on_dashboard["version"] == dashboard_version + 1
            assert on_dashboard["entry"]["patient"]["name"] == appt.patient.full_name
            assert (on_display["action"], on_display["version"]) == ("checked_in", display_version + 1)
            assert on_display["entry"]["token_label"] == token_label
            assert "patient" not in on_display["entry"]

            # The doctor calls the patient through server one's API; the display on server two shows it.
            status, body = post(f"{one.url}/api/v1/doctors/{doctor.pk}/queue/call-next/", token=doctors_token)
            assert status == 200, body
            on_dashboard, on_display = receive(dashboard), receive(display)
            assert (on_dashboard["action"], on_dashboard["version"]) == ("called", dashboard_version + 2)
            assert (on_display["action"], on_display["entry"]["state"]) == ("called", "called")

        # An old-style ?token= is refused (closed 4401), and no credential reached the access log.
        with connect(
            f"{one.ws_url}/ws/queue/doctor/{doctor.pk}/?token={doctors_token}",
            origin=one.url,
            open_timeout=WAIT,
        ) as refused:
            with pytest.raises(ConnectionClosed) as closed:
                refused.recv(timeout=WAIT)
            assert closed.value.rcvd.code == 4401
        log = one.output()
        assert f"/ws/queue/doctor/{doctor.pk}/?ticket=[redacted]" in log  # the handshake was logged
        for credential in (ticket, doctors_token, reception):
            assert credential not in log
