"""Websockets follow the person's standing (issue 14, items 1 and 7): a socket whose user loses access is
closed within one event with a last frame saying why; resync after revocation gets nothing; frames that
are not JSON get an error frame; resync is rate-limited per socket.

Through the real ASGI application and the Redis channel layer, as test_ws_queue.py: transaction=True, so
the revocation's on_commit event really goes out through Redis to the consumer.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.utils import timezone

from opd.asgi import application
from opd.core.models import Membership, Role
from opd.core.services.users import membership_remove, user_change_role, user_deactivate
from scheduling.models import ApprovalStatus, Doctor
from scheduling.services import appointment_check_in, doctor_set_approval

from .queue_helpers import booked, isolate_channel_layer, session_cookie, waiting
from .test_ws_queue import TIMEOUT, WebsocketCommunicator, opened, run, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]

CLOSED = {"type": "closed", "reason": "access_revoked"}


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)


async def closed_for_revocation(communicator) -> None:
    """The last frame says why; then the close, with 4403."""
    assert await communicator.receive_json_from(timeout=TIMEOUT) == CLOSED
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message == {"type": "websocket.close", "code": 4403}


def _suspend(admin_user, doctor, clinic):
    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)


def _deactivate(admin_user, doctor, clinic):
    user_deactivate(actor=admin_user, user=doctor.user)


def _remove_membership(admin_user, doctor, clinic):
    membership_remove(actor=admin_user, membership=Membership.objects.get(user=doctor.user, clinic=clinic))


def _role_to_patient(admin_user, doctor, clinic):
    user_change_role(actor=admin_user, user=doctor.user, role=Role.PATIENT)


REVOCATIONS = [_suspend, _deactivate, _remove_membership, _role_to_patient]


@pytest.mark.parametrize("revoke", REVOCATIONS, ids=lambda f: f.__name__.strip("_"))
def test_a_doctors_socket_is_closed_within_one_event_when_access_ends(
    admin_user, staff_user, doctor, department, clinic, revoke
):
    waiting(staff_user, doctor, department)
    later = booked(staff_user, doctor, department)
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        await opened(mine)
        await sync_to_async(revoke)(admin_user, doctor, clinic)
        # The next change to the queue, with a patient's name, must not reach them.
        await sync_to_async(appointment_check_in)(actor=staff_user, appointment=later)
        await closed_for_revocation(mine)
        assert await mine.receive_nothing(timeout=0.2)

    run(scenario)


def test_the_socket_stays_open_when_someone_elses_access_ends(
    admin_user, staff_user, doctor, colleague, department, clinic
):
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        await opened(mine)
        await sync_to_async(_suspend)(admin_user, colleague, clinic)
        await sync_to_async(waiting)(staff_user, doctor, department)
        event = await mine.receive_json_from(timeout=TIMEOUT)
        assert event["type"] == "event"
        await mine.disconnect()

    run(scenario)


def test_a_resync_after_revocation_gets_nothing_but_the_close(staff_user, doctor, department):
    waiting(staff_user, doctor, department)
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        await opened(mine)
        # Suspended behind the services' back (a revocation message lost): the resync re-checks anyway.
        await sync_to_async(Doctor.objects.filter(pk=doctor.pk).update)(
            approval_status=ApprovalStatus.SUSPENDED
        )
        await mine.send_json_to({"type": "resync"})
        await closed_for_revocation(mine)

    run(scenario)


def test_a_suspended_doctor_cannot_connect(admin_user, doctor, clinic):
    _suspend(admin_user, doctor, clinic)
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        connected, _ = await mine.connect(timeout=TIMEOUT)
        assert connected
        assert await mine.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4403}

    run(scenario)


def test_a_deactivated_users_notification_socket_is_closed(admin_user, staff_user):
    cookie = session_cookie(staff_user)
    mine = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie.encode())],
    )

    async def scenario():
        connected, _ = await mine.connect(timeout=TIMEOUT)
        assert connected
        await sync_to_async(user_deactivate)(actor=admin_user, user=staff_user)
        await closed_for_revocation(mine)

    run(scenario)


# Frames


@pytest.mark.parametrize(
    "frame",
    [{"text_data": "resync"}, {"text_data": "{"}, {"text_data": "[" * 5000}, {"bytes_data": b"\x00\xff"}],
    ids=["plain-text", "broken-json", "deeply-nested", "binary"],
)
def test_a_frame_that_is_not_json_gets_an_error_frame(doctor, frame):
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    async def scenario():
        await opened(mine)
        await mine.send_to(**frame)
        error = await mine.receive_json_from(timeout=TIMEOUT)
        assert (error["type"], error["code"]) == ("error", "bad_frame")
        # The socket lives on.
        await mine.send_json_to({"type": "ping"})
        assert (await mine.receive_json_from(timeout=TIMEOUT))["type"] == "pong"
        await mine.disconnect()

    run(scenario)


def test_the_notification_socket_answers_a_binary_frame_with_an_error(staff_user):
    cookie = session_cookie(staff_user)
    mine = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie.encode())],
    )

    async def scenario():
        connected, _ = await mine.connect(timeout=TIMEOUT)
        assert connected
        await mine.send_to(bytes_data=b"\x00")
        assert (await mine.receive_json_from(timeout=TIMEOUT))["code"] == "bad_frame"
        await mine.disconnect()

    run(scenario)


def test_resync_is_rate_limited_per_socket(settings, doctor):
    settings.OPD_QUEUE_RESYNC_INTERVAL_SECONDS = 1.0
    mine = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)
    other = socket(f"/ws/queue/doctor/{doctor.pk}/", user=doctor.user)

    with time_machine.travel(timezone.now(), tick=False) as clock:

        async def scenario():
            await opened(mine)
            await opened(other)
            await mine.send_json_to({"type": "resync"})
            assert (await mine.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"

            for _ in range(3):
                await mine.send_json_to({"type": "resync"})
                refused = await mine.receive_json_from(timeout=TIMEOUT)
                assert (refused["type"], refused["code"]) == ("error", "rate_limited")
                assert refused["retry_after"] == 1.0

            # Another socket has its own allowance.
            await other.send_json_to({"type": "resync"})
            assert (await other.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"

            clock.shift(dt.timedelta(milliseconds=400))
            await mine.send_json_to({"type": "resync"})
            assert (await mine.receive_json_from(timeout=TIMEOUT))["retry_after"] == 0.6

            clock.shift(dt.timedelta(milliseconds=600))
            await mine.send_json_to({"type": "resync"})
            assert (await mine.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
            await mine.disconnect()
            await other.disconnect()

        run(scenario)
