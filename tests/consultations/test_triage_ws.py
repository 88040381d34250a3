"""Triage over the live queue's websockets (real ASGI app, Redis channel layer, committed transactions):
the doctor's socket hears the reorder and the NEWS2 alert; the clinic's hears the alert without the name,
and the re-score reminder."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from consultations.services import triage_record, triage_rescore_reminders
from tests.scheduling.queue_helpers import isolate_channel_layer, run_scenario, waiting
from tests.scheduling.test_ws_queue import TIMEOUT, opened, socket

from .factories import CALM_VITALS
from .test_triage import HIGH_VITALS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)


def test_the_doctors_socket_gets_the_reorder_and_the_alert(nurse, staff_user, doctor, department, clinic):
    first = waiting(staff_user, doctor, department, minutes=10)
    second = waiting(staff_user, doctor, department, minutes=20)
    name = second.patient.full_name
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=nurse)

    async def scenario():
        snapshot = await opened(mine)
        assert [row["appointment_id"] for row in snapshot["snapshot"]["waiting"]] == [first.pk, second.pk]
        await opened(room)

        await sync_to_async(triage_record)(actor=nurse, appointment=second, **HIGH_VITALS)

        received = [await mine.receive_json_from(timeout=TIMEOUT) for _ in range(2)]
        by_type = {message["type"]: message for message in received}
        assert set(by_type) == {"event", "alert"}
        event = by_type["event"]
        assert (event["action"], event["appointment_id"]) == ("priority", second.pk)
        assert event["entry"]["is_priority"] is True
        alert = by_type["alert"]
        assert alert["appointment_id"] == second.pk
        assert alert["alert"]["level"] == "emergency"
        assert alert["alert"]["patient"] == name
        assert "call the emergency team" in alert["alert"]["action"]

        await mine.send_json_to({"type": "resync"})
        fresh = await mine.receive_json_from(timeout=TIMEOUT)
        assert [row["appointment_id"] for row in fresh["snapshot"]["waiting"]] == [second.pk, first.pk]

        on_screen = [await room.receive_json_from(timeout=TIMEOUT) for _ in range(2)]
        room_alert = next(message for message in on_screen if message["type"] == "alert")
        assert room_alert["alert"]["level"] == "emergency"
        assert "patient" not in room_alert["alert"]
        await mine.disconnect()
        await room.disconnect()

    run_scenario(scenario)


def test_the_clinics_socket_gets_the_rescore_reminder(nurse, staff_user, doctor, department, clinic):
    appt = waiting(staff_user, doctor, department, minutes=10)
    triage_record(actor=nurse, appointment=appt, **CALM_VITALS)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=nurse)

    async def scenario():
        await opened(room)
        sent = await sync_to_async(triage_rescore_reminders)(now=timezone.now() + dt.timedelta(hours=3))
        assert sent == 1
        message = await room.receive_json_from(timeout=TIMEOUT)
        assert message["type"] == "alert"
        assert message["alert"]["kind"] == "rescore_due"
        assert message["appointment_id"] == appt.pk
        assert "patient" not in message["alert"]
        await room.disconnect()

    run_scenario(scenario)
