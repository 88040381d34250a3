"""A queue page that missed a NEWS2 alert (its socket dropped, or the alert's message was lost) still shows
it: every snapshot carries the alerts that hold now. Through the real ASGI application and the Redis
channel layer, as tests/scheduling/test_ws_queue.py runs its sockets."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from consultations import news2
from consultations.services import triage_record
from opd.asgi import application
from opd.core import events
from scheduling import realtime
from scheduling.services import appointment_check_in
from tests.scheduling.queue_helpers import (
    booked,
    isolate_channel_layer,
    run_scenario,
    session_cookie,
    waiting,
    websocket_communicator_class,
)

from .test_triage import HIGH_VITALS

WebsocketCommunicator = websocket_communicator_class()

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]

TIMEOUT = 5


def socket(path: str, user) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"cookie", session_cookie(user).encode())]
    return WebsocketCommunicator(application, path, headers=headers)


async def opened(communicator: WebsocketCommunicator) -> dict:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
    assert snapshot["type"] == "snapshot", snapshot
    return snapshot


def test_a_snapshot_after_a_missed_alert_carries_it(settings, staff_user, nurse, doctor, department, clinic):
    isolate_channel_layer(settings)
    calm = waiting(staff_user, doctor, department, minutes=10)
    later = booked(staff_user, doctor, department, minutes=20)
    name, token_label = calm.patient.full_name, calm.token_label

    dashboard = socket(f"/ws/queue/doctor/{doctor.pk}/", doctor.user)
    triage_page = socket(f"/ws/queue/clinic/{clinic.pk}/", nurse)

    async def scenario():
        start = await opened(dashboard)
        await opened(triage_page)
        assert start["snapshot"]["alerts"] == []

        # The nurse records an emergency NEWS2 while neither page hears anything: the alert and the
        # queue change it brings are lost on their way (a socket that was reconnecting, a process gone).
        events.unsubscribe(events.QUEUE_ALERT, realtime.on_queue_alert)
        events.unsubscribe(events.QUEUE_CHANGED, realtime.on_queue_event)
        try:
            await sync_to_async(triage_record)(actor=nurse, appointment=calm, **HIGH_VITALS)
        finally:
            events.subscribe(events.QUEUE_ALERT, realtime.on_queue_alert)
            events.subscribe(events.QUEUE_CHANGED, realtime.on_queue_event)
        assert await dashboard.receive_nothing(timeout=0.3)
        assert await triage_page.receive_nothing(timeout=0.3)

        # The next change leaves a gap in the doctor's versions: the consumer sends a fresh snapshot,
        # and the alert is in it, with the patient's name, as the live alert would have been.
        await sync_to_async(appointment_check_in)(actor=staff_user, appointment=later)
        fresh = await dashboard.receive_json_from(timeout=TIMEOUT)
        assert fresh["type"] == "snapshot"
        [alert] = fresh["snapshot"]["alerts"]
        assert alert["appointment_id"] == calm.pk
        assert alert["alert"]["kind"] == "news2"
        assert alert["alert"]["level"] == news2.EMERGENCY
        assert alert["alert"]["news2_total"] == 11
        assert alert["alert"]["patient"] == name
        assert alert["alert"]["token_label"] == token_label
        assert alert["alert"]["source"] == "triage"

        # The triage page's client saw the gap and asks for a resync: the clinic's snapshot carries the
        # alert too, without the patient's name (a waiting-room screen listens to the same queue).
        for _ in range(5):
            message = await triage_page.receive_json_from(timeout=TIMEOUT)
            if message["type"] in ("event", "snapshot"):
                break
        await triage_page.send_json_to({"type": "resync"})
        resynced = await triage_page.receive_json_from(timeout=TIMEOUT)
        assert resynced["type"] == "snapshot"
        [public] = resynced["snapshot"]["alerts"]
        assert public["appointment_id"] == calm.pk
        assert public["alert"]["level"] == news2.EMERGENCY
        assert "patient" not in public["alert"]
        await dashboard.disconnect()
        await triage_page.disconnect()

    run_scenario(scenario)
