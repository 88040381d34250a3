"""In-app messages reach a signed-in user's open pages over the (Redis) channel layer."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter
from django.contrib.auth.models import AnonymousUser

from notifications.models import Channel, Kind, Notification, Status
from notifications.routing import websocket_urlpatterns
from notifications.services import new_notification, notification_enqueue
from tests.scheduling.queue_helpers import run_scenario

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    # Consumers close "old" database connections when they start; in a test that would close the
    # connection holding the test's transaction. channels.testing's communicator patches it the same way.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


application = URLRouter(websocket_urlpatterns)


class Socket(ApplicationCommunicator):
    """A browser's websocket, spoken in ASGI messages. (channels.testing needs daphne, which we do not
    install; this is the part of its WebsocketCommunicator these tests use.)"""

    def __init__(self, user):
        # The user is what AuthMiddlewareStack would put in the scope from the session cookie.
        scope = {"type": "websocket", "path": "/ws/notifications/", "query_string": b"", "headers": []}
        super().__init__(application, {**scope, "user": user})

    async def connect(self) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(2)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, None

    async def receive_json_from(self, timeout: float) -> dict:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


def _communicator(user) -> Socket:
    return Socket(user)


def test_it_pushes_an_in_app_message_to_the_recipients_open_page(patient, other_patient, committed):
    def send_in_app():
        with committed():
            notification, _ = notification_enqueue(
                row=new_notification(
                    organization_id=patient.organization_id,
                    patient_id=patient.pk,
                    user_id=patient.user_id,
                    channel=Channel.IN_APP,
                    kind=Kind.BOOKING_CONFIRMATION,
                    subject="Appointment booked",
                    body="Tue 24 Nov 2026, 09:00 Europe/London with Dr House.",
                    dedup_key="appt:1:booking_confirmation:in_app",
                )
            )
        return notification

    async def scenario():
        mine, theirs = _communicator(patient.user), _communicator(other_patient.user)
        assert (await mine.connect())[0]
        assert (await theirs.connect())[0]
        notification = await sync_to_async(send_in_app)()
        received = await mine.receive_json_from(timeout=5)
        nothing_for_them = await theirs.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await theirs.disconnect()
        return notification, received, nothing_for_them

    notification, received, nothing_for_them = run_scenario(scenario)

    assert received["id"] == notification.pk
    assert received["subject"] == "Appointment booked"
    assert received["kind"] == "booking_confirmation"
    assert nothing_for_them
    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert Notification.objects.count() == 1


def test_it_refuses_a_socket_without_a_signed_in_user():
    async def scenario():
        communicator = _communicator(AnonymousUser())
        connected, code = await communicator.connect()
        return connected, code

    connected, code = run_scenario(scenario)

    assert not connected
    assert code == 4401
