"""A worker killed (SIGKILL) in the middle of a task: the broker hands the task to another worker and the
message goes out once.

Tasks are acknowledged late, so the killed worker's message stays in the broker, unacknowledged; a
worker puts it back on its queue once it has been unacknowledged for the visibility timeout. That
restore looks at every unacknowledged message of the Redis database, so this test runs its workers on a
Redis of its own (tests/redis_rig.py): with a short timeout on the shared broker it would redeliver
other tests' tasks that are still running.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from notifications.models import Kind, Notification, PreferredChannel, Status
from notifications.services import appointment_notify_booked, contact_preference_set
from notifications.tasks import send_notification
from opd.celery import app as celery_app
from scheduling.services import appointment_book
from tests.conftest import future_slot, wait_until
from tests.redis_rig import redis_server

from .conftest import sms_lines
from .worker import Worker, purge_queue

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BROKER_PORT = 6415


def test_a_worker_killed_mid_send_has_its_task_redelivered_and_the_message_sent_once(
    patient, doctor, department, staff_user, settings, tmp_path, sms_dir
):
    # The booking's own side effects go to a queue nobody consumes (removed at the end): the send this
    # test follows is the one it publishes itself, on its own broker.
    side_queue = f"notif-test-{uuid.uuid4().hex[:10]}"
    settings.OPD_NOTIFICATIONS_QUEUE = side_queue
    contact_preference_set(
        actor=staff_user,
        patient=patient,
        email_enabled=False,
        sms_enabled=True,
        in_app_enabled=False,
        preferred_channel=PreferredChannel.SMS,
    )
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    appointment_notify_booked(appointment_id=appointment.pk)
    confirmation = Notification.objects.get(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION)
    hold = tmp_path / "hold-sms"
    overrides = {
        "OPD_SMS_BACKEND": "notifications.backends.FileSmsBackend",
        "OPD_SMS_FILE_DIR": str(sms_dir),
        "OPD_SMS_FILE_HOLD_PATH": str(hold),
        "OPD_NOTIFICATION_LEASE_SECONDS": 3,
        # Production keeps an hour (longer than any task runs); a test cannot wait that long. The restore
        # looks every second instead of every ten.
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 5, "unacked_restore_interval": 1},
    }
    queue = f"notif-test-{uuid.uuid4().hex[:10]}"
    task_id = str(uuid.uuid4())

    try:
        with redis_server(BROKER_PORT) as broker:
            url = f"redis://127.0.0.1:{broker.port}/0"
            folder = tmp_path / "workers"
            environ = {"CELERY_BROKER_URL": url}
            first = Worker(queue=queue, folder=folder, overrides=overrides, environ=environ)
            second = Worker(queue=queue, folder=folder, overrides=overrides, environ=environ)
            hold.touch()  # the file SMS backend waits while this file exists
            first.start()
            with celery_app.connection_for_write(url) as connection:
                send_notification.apply_async(
                    [confirmation.pk], queue=queue, task_id=task_id, connection=connection
                )
            wait_until(
                lambda: Notification.objects.get(pk=confirmation.pk).status == Status.SENDING, what=first.log
            )
            second.spawn()  # it starts while the first is still mid-send (and takes nothing before it is gone)
            first.kill()  # mid-send: claimed, nothing sent, no acknowledgement
            hold.unlink()

            client = redis.Redis(port=broker.port)
            assert client.hlen("unacked") == 1  # the broker still holds the message, unacknowledged
            assert sms_lines(sms_dir) == []
            second.wait_ready()
            try:
                wait_until(
                    lambda: Notification.objects.get(pk=confirmation.pk).status == Status.SENT,
                    timeout=30,
                    what=second.log,
                )
                wait_until(lambda: client.hlen("unacked") == 0, what="the redelivered task's acknowledgement")
            finally:
                second.stop()
            client.close()
    finally:
        purge_queue(side_queue)

    # The very task the first worker took, redelivered by the broker (no dispatcher ran).
    assert f"notifications.send[{task_id}]" in first.log()
    assert f"notifications.send[{task_id}] succeeded" in second.log()
    sent = Notification.objects.get(pk=confirmation.pk)
    assert (sent.status, sent.attempts) == (Status.SENT, 2)
    lines = [line for line in sms_lines(sms_dir) if line["message_id"] == f"opd-notification-{sent.pk}"]
    assert len(lines) == 1
