"""Redis behind Sentinel: the primary is killed in the middle of traffic and the platform follows the
replica Sentinel promotes, with no restart.

A Redis primary, its replica and three sentinels of the test's own (tests/redis_rig.py, on ports given to
these tests) serve a real uvicorn (pages, API, websockets) and a real Celery worker, both configured by
REDIS_SENTINELS and REDIS_SENTINEL_MASTER alone. What is checked is what an operator would look at:
bookings answered 201 throughout, `/readyz` back to "ok" on the new primary, a queue change reaching the
doctor's socket and a booking's SMS confirmation sent by the same worker.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from notifications.models import Kind, Notification, PreferredChannel, Status
from notifications.services import contact_preference_set
from tests.conftest import future_slot, token_for, wait_until
from tests.factories import PatientFactory
from tests.notifications.conftest import sms_lines
from tests.notifications.worker import Worker, process_env
from tests.redis_rig import MASTER_NAME, sentinel_rig
from tests.scheduling.asgi_server import asgi_server, post
from tests.scheduling.queue_helpers import booked, move_to_daytime_zone

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PRIMARY, REPLICA, SENTINELS = 6410, 6411, [26410, 26411, 26412]
# Sentinel notices the dead primary after 1 s (down-after-milliseconds), votes and promotes; clients
# reconnect on their next command. Everything must be back well within this.
RECOVERY = 20


def sms_patient(org, staff_user):
    patient = PatientFactory(organization=org)
    contact_preference_set(
        actor=staff_user,
        patient=patient,
        email_enabled=False,
        sms_enabled=True,
        in_app_enabled=False,
        preferred_channel=PreferredChannel.SMS,
    )
    return patient


def book_through(server, token: str, *, slot, patient) -> tuple[int, dict]:
    status, body = post(
        f"{server.url}/api/v1/appointments/",
        token=token,
        body=json.dumps({"slot": slot.pk, "patient": patient.pk}).encode(),
    )
    return status, json.loads(body or b"{}")


def readiness(server) -> dict:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def confirmation_sent(sms_folder, appointment_id: int) -> bool:
    notification = Notification.objects.filter(
        appointment_id=appointment_id, kind=Kind.BOOKING_CONFIRMATION, status=Status.SENT
    ).first()
    return notification is not None and any(
        line["message_id"] == f"opd-notification-{notification.pk}" for line in sms_lines(sms_folder)
    )


def open_dashboard(sockets: contextlib.ExitStack, server, doctor, doctors_token: str):
    """The doctor's dashboard socket (a single-use ticket from the cache) and its first snapshot."""
    status, body = post(f"{server.url}/api/v1/auth/ws-ticket/", token=doctors_token)
    assert status == 201, body
    ws = sockets.enter_context(
        connect(
            f"{server.ws_url}/ws/queue/doctor/{doctor.pk}/?ticket={json.loads(body)['ticket']}",
            origin=server.url,
            open_timeout=10,
        )
    )
    snapshot = json.loads(ws.recv(timeout=10))
    return ws, snapshot


def test_booking_live_queue_and_messages_follow_the_replica_sentinel_promotes(
    staff_user, doctor, department, clinic, org, tmp_path
):
    move_to_daytime_zone(clinic)  # the server runs on the real clock
    sms_folder = tmp_path / "sms"
    reception, doctors_token = token_for(staff_user), token_for(doctor.user)
    waiting = booked(staff_user, doctor, department, minutes=20)
    slots = [future_slot(doctor, department) for _ in range(9)]

    with sentinel_rig(PRIMARY, REPLICA, SENTINELS) as rig:
        overrides = {
            "OPD_SMS_BACKEND": "notifications.backends.FileSmsBackend",
            "OPD_SMS_FILE_DIR": str(sms_folder),
            "OPD_NOTIFICATIONS_QUEUE": "celery",  # the default queue: this Redis is the test's own
        }
        # Only the sentinels' addresses and the primary's name: no Redis host anywhere.
        environ = {
            "REDIS_SENTINELS": rig.addresses,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_URL": "redis://unused/0",
        }
        environ["CELERY_BROKER_URL"] = ";".join(f"sentinel://127.0.0.1:{port}/0" for port in SENTINELS)
        worker_env = process_env(overrides, **environ)
        server_environ = {
            key: worker_env[key]
            for key in ("DJANGO_SETTINGS_MODULE", "OPD_TEST_WORKER_SETTINGS", "CELERY_TASK_ALWAYS_EAGER")
        }
        worker = Worker(queue="celery", folder=tmp_path / "worker", overrides=overrides, environ=environ)
        with asgi_server(f"opd-test-{uuid.uuid4().hex[:8]}", environ={**environ, **server_environ}) as server:
            worker.start()
            sockets = contextlib.ExitStack()
            try:
                # Before: everything works through the first primary.
                assert readiness(server)["status"] == "ok", readiness(server)
                before = sms_patient(org, staff_user)
                status, body = book_through(server, reception, slot=slots[0], patient=before)
                assert status == 201, body
                wait_until(lambda: confirmation_sent(sms_folder, body["id"]), what=worker.log)
                dashboard, _snapshot = open_dashboard(sockets, server, doctor, doctors_token)

                # Traffic: a booking every 0.2 s, from before the kill until after the promotion.
                statuses: list[int] = []
                stop = threading.Event()

                def traffic() -> None:
                    for slot in slots[1:]:
                        if stop.is_set():
                            return
                        patient = PatientFactory(organization=org)
                        statuses.append(book_through(server, reception, slot=slot, patient=patient)[0])
                        time.sleep(0.2)

                storm = threading.Thread(target=traffic)
                storm.start()
                time.sleep(0.5)
                killed_at = time.monotonic()
                rig.primary.kill()

                wait_until(lambda: rig.current_primary_port() == REPLICA, timeout=RECOVERY, what="promotion")
                promoted_after = time.monotonic() - killed_at
                wait_until(
                    lambda: readiness(server)["status"] == "ok",
                    timeout=RECOVERY,
                    interval=0.2,
                    what="readyz ok",
                )
                ready_after = time.monotonic() - killed_at
                storm.join(timeout=60)
                stop.set()

                # No restart: the same server and worker processes.
                assert server.process.poll() is None
                assert worker.process.poll() is None
                assert statuses == [201] * (len(slots) - 1), statuses

                # A queue change reaches the dashboard: over the socket opened before the failover, or,
                # if the server closed it when its channel-layer connection broke, over the socket the
                # page opens again (with a fresh snapshot, as static/js/queue.js does).
                status, body = post(
                    f"{server.url}/api/v1/appointments/{waiting.pk}/check-in/", token=reception
                )
                assert status == 200, body
                try:
                    event = json.loads(dashboard.recv(timeout=RECOVERY))
                except (ConnectionClosed, TimeoutError):
                    event = {"type": "dropped"}
                if event["type"] in ("dropped", "paused"):  # the server closed it: the page reconnects
                    dashboard, event = open_dashboard(sockets, server, doctor, doctors_token)
                    print("the dashboard reconnected after the failover")
                if event["type"] == "event":
                    assert event["action"] == "checked_in"
                    assert event["entry"]["patient"]["name"] == waiting.patient.full_name
                else:
                    assert waiting.patient.full_name in json.dumps(event)
                # And one made after that arrives as an event on the live socket.
                status, body = post(
                    f"{server.url}/api/v1/doctors/{doctor.pk}/queue/call-next/", token=doctors_token
                )
                assert status == 200, body
                event = json.loads(dashboard.recv(timeout=RECOVERY))
                assert (event["type"], event["action"]) == ("event", "called")

                # A booking made on the new primary is confirmed by the same worker.
                after = sms_patient(org, staff_user)
                status, body = book_through(server, reception, slot=slots[-1], patient=after)
                assert status == 201, body
                wait_until(
                    lambda: confirmation_sent(sms_folder, body["id"]), timeout=RECOVERY, what=worker.log
                )
                print(f"promoted after {promoted_after:.1f} s, readyz ok after {ready_after:.1f} s")
            finally:
                sockets.close()
                worker.stop()
