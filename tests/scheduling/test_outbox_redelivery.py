"""The outbox delivers at least once: a queue socket shown an event twice shows it once.

Through the real ASGI consumer and the Redis channel layer (as tests/scheduling/test_ws_queue.py): the
change commits and its process delivers it; then the stored row is delivered again, as the relay does
when the first delivery's mark was lost.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from opd.core import events
from opd.core.models import OutboxEvent

from .queue_helpers import booked, isolate_channel_layer, run_scenario
from .test_ws_queue import TIMEOUT, opened, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)


def deliver_again(event: str) -> None:
    stored = OutboxEvent.objects.filter(event=event).latest("pk")
    assert events.deliver(stored.event, stored.payload) is None


def test_a_booking_delivered_twice_reaches_the_queue_socket_once(staff_user, doctor, department):
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        version = (await opened(mine))["version"]
        appointment = await sync_to_async(booked)(staff_user, doctor, department)
        first = await mine.receive_json_from(timeout=TIMEOUT)
        assert (first["type"], first["version"], first["appointment_id"]) == (
            "event",
            version + 1,
            appointment.pk,
        )

        await sync_to_async(deliver_again)(events.APPOINTMENT_BOOKED)

        # The repeat carries the version the socket already passed on: dropped.
        assert await mine.receive_nothing(timeout=0.5)
        await mine.disconnect()

    run_scenario(scenario)


def test_an_alert_delivered_twice_is_shown_once(staff_user, doctor, department):
    appointment = booked(staff_user, doctor, department)
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    def raise_alert() -> None:
        events.publish(
            events.QUEUE_ALERT,
            appointment_id=appointment.pk,
            doctor_id=doctor.pk,
            clinic_id=appointment.clinic_id,
            alert={"id": "a1b2", "kind": "rescore_due", "level": "urgent", "token_label": "A-1"},
        )

    async def scenario():
        await opened(mine)
        await sync_to_async(raise_alert)()
        first = await mine.receive_json_from(timeout=TIMEOUT)
        assert (first["type"], first["alert"]["id"]) == ("alert", "a1b2")

        await sync_to_async(deliver_again)(events.QUEUE_ALERT)

        assert await mine.receive_nothing(timeout=0.5)
        await mine.disconnect()

    run_scenario(scenario)
