"""The access log of the queue's websocket (issue #15): each snapshot of a doctor's queue sent (it names
patients) is one access row with the socket's address and user agent; live events are not logged one by
one; the waiting-room queue (no names) is not logged."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from opd.asgi import application
from opd.core.models import AuditEvent
from scheduling.services import appointment_check_in

from .queue_helpers import booked, isolate_channel_layer, session_cookie
from .test_ws_queue import TIMEOUT, WebsocketCommunicator, opened, run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)


def socket(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", b"http://testserver"),
            (b"cookie", session_cookie(user).encode()),
            (b"user-agent", b"QueueBoard/2.1"),
        ],
    )
    communicator.scope["client"] = ("198.51.100.23", 51000)
    return communicator


def queue_views() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="queue.viewed").order_by("pk"))


def test_each_snapshot_of_a_doctors_queue_is_logged_with_the_socket_address(
    doctor, department, staff_user, patient
):
    appointment = appointment_check_in(
        actor=staff_user, appointment=booked(staff_user, doctor, department, patient=patient)
    )
    communicator = socket(f"/ws/queue/doctor/{doctor.pk}/", staff_user)

    async def scenario():
        await opened(communicator)
        # A live event: passed on, not logged (the snapshot's reader already has the queue in front of them).
        await sync_to_async(booked)(staff_user, doctor, department)
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "event"
        await communicator.send_json_to({"type": "resync"})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        await communicator.disconnect()

    run(scenario)

    rows = queue_views()
    assert len(rows) == 2  # the snapshot on connect and the one on resync
    first = rows[0]
    assert first.actor == staff_user
    assert (first.object_type, first.object_id) == ("scheduling.queue", f"doctor:{doctor.pk}")
    assert first.data["via"] == "websocket"
    assert first.data["patients"] == [patient.pk]
    assert first.data["appointments"] == [appointment.pk]
    assert (first.source_ip, first.user_agent) == ("198.51.100.23", "QueueBoard/2.1")
    assert len(rows[1].data["patients"]) == 2


def test_the_waiting_room_queue_names_nobody_and_is_not_logged(clinic, staff_user):
    communicator = socket(f"/ws/queue/clinic/{clinic.pk}/", staff_user)

    async def scenario():
        await opened(communicator)
        await communicator.disconnect()

    run(scenario)
    assert queue_views() == []
