"""The queue's websockets, through the real ASGI application and the Redis channel layer.

Each test is one coroutine run with async_to_sync; database work inside it goes through sync_to_async,
which runs it in the test's own thread and connection. transaction=True, so changes really commit and
their on_commit events really go out through Redis to the consumer.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from opd.asgi import application
from opd.core import events
from opd.core.services import tokens_revoke_all
from scheduling import realtime
from scheduling.services import appointment_check_in, appointment_start, queue_call_next
from tests.conftest import token_for

from .queue_helpers import (
    booked,
    isolate_channel_layer,
    run_scenario,
    session_cookie,
    waiting,
    websocket_communicator_class,
)

WebsocketCommunicator = websocket_communicator_class()

# The consumer runs in this process (no server), so the pinned clock is its clock too.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]

TIMEOUT = 5


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)


def run(scenario) -> None:
    run_scenario(scenario)


def socket(path: str, *, user=None, cookie: str | None = None, subprotocols=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        cookie = session_cookie(user)
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)


async def close_code(communicator: WebsocketCommunicator) -> int:
    """Connect and return the code the server closed with at once."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def opened(communicator: WebsocketCommunicator) -> dict:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
    assert snapshot["type"] == "snapshot", snapshot
    return snapshot


# Who may connect


def test_it_refuses_anonymous_patients_colleagues_and_other_tenants(
    doctor, colleague, department, clinic, patient, staff_user, other_org_doctor, other_org_clinic
):
    doctor_path = f"/ws/queue/doctor/{doctor.pk}/"
    clinic_path = f"/ws/queue/clinic/{clinic.pk}/"
    cases = [
        (socket(doctor_path), 4401),
        (socket(clinic_path), 4401),
        (socket(doctor_path, cookie="sessionid=not-a-session"), 4401),
        (socket(doctor_path, user=patient.user), 4403),
        (socket(doctor_path, user=colleague.user), 4403),
        (socket(clinic_path, user=doctor.user), 4403),
        (socket(f"/ws/queue/doctor/{other_org_doctor.pk}/", user=staff_user), 4404),
        (socket(f"/ws/queue/clinic/{other_org_clinic.pk}/", user=staff_user), 4404),
        (socket("/ws/queue/doctor/999999/", user=doctor.user), 4404),
    ]

    async def scenario():
        for communicator, code in cases:
            assert await close_code(communicator) == code, communicator.scope
            await communicator.disconnect()

    run(scenario)


def test_it_refuses_a_page_from_another_site(doctor):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/queue/doctor/{doctor.pk}/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", session_cookie(doctor.user).encode())],
    )

    async def scenario():
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert not connected

    run(scenario)


def test_it_signs_in_with_an_api_token_in_the_subprotocol(staff_user, doctor):
    token = token_for(staff_user)
    path = f"/ws/queue/doctor/{doctor.pk}/"
    by_header = socket(path, subprotocols=["opd-token", token])

    async def scenario():
        connected, subprotocol = await by_header.connect(timeout=TIMEOUT)
        assert connected
        assert subprotocol == "opd-token"  # a browser insists on hearing one it offered
        assert (await by_header.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        await by_header.disconnect()

        assert await close_code(socket(path, subprotocols=["opd-token", "not-a-token"])) == 4401

    run(scenario)


def test_it_refuses_a_token_in_the_query_string(staff_user, doctor):
    # Query strings land in access logs: a token there is never read, even a live one.
    token = token_for(staff_user)

    async def scenario():
        assert await close_code(socket(f"/ws/queue/doctor/{doctor.pk}/?token={token}")) == 4401

    run(scenario)


def test_it_refuses_a_revoked_or_expired_token_in_the_subprotocol(staff_user, doctor, settings):
    revoked = token_for(staff_user)
    tokens_revoke_all(actor=staff_user, user=staff_user, reason="test")
    expired = token_for(staff_user)
    path = f"/ws/queue/doctor/{doctor.pk}/"

    async def scenario():
        assert await close_code(socket(path, subprotocols=["opd-token", revoked])) == 4401
        assert await close_code(socket(path, subprotocols=["opd-token", expired])) == 4401

    later = timezone.now() + dt.timedelta(hours=settings.OPD_TOKEN_TTL_HOURS, seconds=1)
    with time_machine.travel(later, tick=False):
        run(scenario)


def test_it_signs_in_once_with_a_ticket(api_as, staff_user, doctor):
    response = api_as(staff_user).post("/api/v1/auth/ws-ticket/")
    assert response.status_code == 201
    ticket = response.json()["ticket"]
    path = f"/ws/queue/doctor/{doctor.pk}/?ticket={ticket}"
    first = socket(path)

    async def scenario():
        assert (await opened(first))["queue"] == f"doctor:{doctor.pk}"
        await first.disconnect()
        assert await close_code(socket(path)) == 4401  # used

    run(scenario)


def test_it_refuses_an_expired_or_unknown_ticket(api_as, staff_user, doctor, settings):
    ticket = api_as(staff_user).post("/api/v1/auth/ws-ticket/").json()["ticket"]
    path = f"/ws/queue/doctor/{doctor.pk}/"

    async def scenario():
        assert await close_code(socket(f"{path}?ticket={ticket}")) == 4401
        assert await close_code(socket(f"{path}?ticket=not-a-ticket")) == 4401

    # Still in the cache (it keeps entries a second longer), past the ticket's own expiry.
    later = timezone.now() + dt.timedelta(seconds=settings.OPD_WS_TICKET_SECONDS)
    with time_machine.travel(later, tick=False):
        run(scenario)


# Snapshot and events


def test_it_sends_the_same_snapshot_as_the_api_on_connect(api_as, staff_user, doctor, department, clinic):
    waiting(staff_user, doctor, department, minutes=10)
    waiting(staff_user, doctor, department, minutes=20)
    by_api = api_as(doctor.user).get(f"/api/v1/doctors/{doctor.pk}/queue/").json()
    clinic_by_api = api_as(staff_user).get(f"/api/v1/clinics/{clinic.pk}/queue/").json()

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=staff_user)

    async def scenario():
        message = await opened(mine)
        await mine.disconnect()
        clinic_message = await opened(room)
        await room.disconnect()
        return message, clinic_message

    message, clinic_message = run_scenario(scenario)

    assert (
        message["version"] == message["snapshot"]["version"] == by_api["version"] == 4
    )  # 2 bookings, 2 check-ins
    for sent, answered in ((message["snapshot"], by_api), (clinic_message["snapshot"], clinic_by_api)):
        sent.pop("generated_at")
        answered.pop("generated_at")
        assert sent == answered
    assert len(message["snapshot"]["waiting"]) == 2


def test_it_sends_every_change_in_order_with_the_next_version(staff_user, doctor, department, clinic):
    first = booked(staff_user, doctor, department, minutes=10)
    second = booked(staff_user, doctor, department, minutes=20)

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=staff_user)

    async def scenario():
        start = (await opened(mine))["version"]
        room_start = (await opened(room))["version"]

        await sync_to_async(appointment_check_in)(actor=staff_user, appointment=first)
        await sync_to_async(appointment_check_in)(actor=staff_user, appointment=second)
        called = await sync_to_async(queue_call_next)(actor=doctor.user, doctor=doctor)
        await sync_to_async(appointment_start)(actor=doctor.user, appointment=called)

        received = [await mine.receive_json_from(timeout=TIMEOUT) for _ in range(4)]
        assert [m["type"] for m in received] == ["event"] * 4
        assert [m["version"] for m in received] == [start + 1, start + 2, start + 3, start + 4]
        assert [m["action"] for m in received] == ["checked_in", "checked_in", "called", "started"]
        assert [m["appointment_id"] for m in received] == [first.pk, second.pk, first.pk, first.pk]
        assert received[0]["entry"]["token"] == 1
        assert received[0]["entry"]["patient"]["name"] == first.patient.full_name
        assert received[3]["entry"]["state"] == "in_consultation"
        assert await mine.receive_nothing(timeout=0.3)

        on_screen = [await room.receive_json_from(timeout=TIMEOUT) for _ in range(4)]
        assert [m["version"] for m in on_screen] == [room_start + n for n in (1, 2, 3, 4)]
        assert on_screen[2]["entry"]["token_label"] == "GEN-1"
        assert all("patient" not in m["entry"] for m in on_screen)
        await mine.disconnect()
        await room.disconnect()

    run(scenario)


def test_a_missed_event_is_replaced_by_a_fresh_snapshot(staff_user, doctor, department):
    first = booked(staff_user, doctor, department, minutes=10)
    second = booked(staff_user, doctor, department, minutes=20)

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        start = (await opened(mine))["version"]
        # The first check-in's message is lost (as if its process died after commit)...
        events.unsubscribe(events.QUEUE_CHANGED, realtime.on_queue_event)
        try:
            await sync_to_async(appointment_check_in)(actor=staff_user, appointment=first)
        finally:
            events.subscribe(events.QUEUE_CHANGED, realtime.on_queue_event)
        assert await mine.receive_nothing(timeout=0.3)
        # ...so the next one would leave a gap: the consumer sends the whole queue instead.
        await sync_to_async(appointment_check_in)(actor=staff_user, appointment=second)
        message = await mine.receive_json_from(timeout=TIMEOUT)
        assert message["type"] == "snapshot"
        assert message["version"] == start + 2
        assert [e["appointment_id"] for e in message["snapshot"]["waiting"]] == [first.pk, second.pk]
        await mine.disconnect()

    run(scenario)


def test_a_client_that_saw_a_gap_asks_for_a_snapshot(staff_user, doctor, department):
    waiting(staff_user, doctor, department)

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        first = await opened(mine)
        await mine.send_json_to({"type": "resync"})
        again = await mine.receive_json_from(timeout=TIMEOUT)
        assert again["type"] == "snapshot"
        assert again["version"] == first["version"]
        assert again["snapshot"]["waiting"] == first["snapshot"]["waiting"]
        await mine.send_json_to({"type": "ping"})
        assert await mine.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "version": first["version"]}
        await mine.send_json_to({"type": "dance"})
        assert (await mine.receive_json_from(timeout=TIMEOUT))["code"] == "unknown_message"
        await mine.disconnect()

    run(scenario)


def test_an_old_event_arriving_late_is_dropped(staff_user, doctor, department):
    waiting(staff_user, doctor, department)

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        version = (await opened(mine))["version"]
        message = {"type": "queue.event", "queue": f"doctor:{doctor.pk}", "version": version, "action": "x"}
        await get_channel_layer().group_send(
            realtime.group_name(f"doctor:{doctor.pk}"), {**message, "appointment_id": 1, "entry": None}
        )
        assert await mine.receive_nothing(timeout=0.3)
        await mine.disconnect()

    run(scenario)


def test_an_api_call_reaches_the_doctors_and_the_waiting_rooms_sockets(
    api_as, staff_user, doctor, department, clinic
):
    appt = booked(staff_user, doctor, department)
    reception = api_as(staff_user)

    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=staff_user)

    async def scenario():
        version = (await opened(mine))["version"]
        await opened(room)

        response = await sync_to_async(reception.post)(f"/api/v1/appointments/{appt.pk}/check-in/")
        assert response.status_code == 200, response.content

        event = await mine.receive_json_from(timeout=TIMEOUT)
        assert (event["type"], event["action"], event["version"]) == ("event", "checked_in", version + 1)
        assert event["entry"]["state"] == "waiting"
        shown = await room.receive_json_from(timeout=TIMEOUT)
        assert (shown["action"], shown["entry"]["token_label"]) == ("checked_in", "GEN-1")
        await mine.disconnect()
        await room.disconnect()

    run(scenario)


# Consultation changes (consultations.realtime): ids and the new version, to the doctor's queue only


def test_a_consultation_write_reaches_the_doctors_socket_with_its_new_version(
    staff_user, doctor, department, clinic
):
    from consultations.services import consultation_open, consultation_update

    appt = appointment_start(actor=doctor.user, appointment=waiting(staff_user, doctor, department))
    consultation = consultation_open(actor=doctor.user, appointment=appt)
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    room = socket(f"/ws/queue/clinic/{clinic.pk}/", user=staff_user)

    async def scenario():
        await opened(mine)
        await opened(room)
        await sync_to_async(consultation_update)(
            actor=doctor.user, consultation=consultation, expected_version=1, plan="Secret plan"
        )
        message = await mine.receive_json_from(timeout=TIMEOUT)
        assert message == {
            "type": "consultation",
            "consultation_id": consultation.pk,
            "appointment_id": appt.pk,
            "version": 2,
            "status": "draft",
        }
        assert "Secret" not in str(message)  # ids and a version: never the record's text
        assert await room.receive_nothing(timeout=0.5)  # the waiting room hears nothing of it
        await mine.disconnect()
        await room.disconnect()

    run(scenario)


def test_it_says_live_updates_are_paused_when_the_channel_layer_is_unreachable(settings, doctor):
    # A real Redis channel layer pointed where nothing listens (connections refused): Redis is down.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"], "prefix": "opd-test-unreachable"},
        }
    }
    communicator = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        # No snapshot that would look live and go stale: "paused", then "try again later".
        paused = await communicator.receive_json_from(timeout=TIMEOUT)
        assert paused == {"type": "paused", "reason": "live_updates_unavailable"}
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 1013}
        await communicator.disconnect()

    run(scenario)
