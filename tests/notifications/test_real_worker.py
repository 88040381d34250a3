"""Exactly-once claims proved with real `celery -A opd worker` processes, Redis and MariaDB.

Each test commits its rows (transaction=True), so the workers, with their own connections to the test
database, see them. Workers consume a queue unique to the test; the file SMS backend writes JSON lines
that the test counts, so "exactly once" is counted where the message comes out, not in a mock.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import pytest
from django.utils import timezone

from notifications.models import Kind, Notification, PreferredChannel, Status
from notifications.services import (
    appointment_notify_booked,
    contact_preference_set,
    notifications_dispatch_due,
)
from notifications.subscribers import enqueue_send
from notifications.tasks import dispatch_due_notifications
from opd.core import events
from scheduling.services import appointment_book, appointment_cancel
from tests.conftest import future_slot, wait_until
from tests.factories import PatientFactory

from .conftest import sms_lines
from .worker import Beat, Worker, process_env, purge_queue, queue_drained

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def planned(appointment, kind: str, **fields) -> Notification:
    """The appointment's message of this kind, once a worker has planned it (bookings' messages are
    planned off the request)."""
    return wait_until(
        lambda: Notification.objects.filter(appointment=appointment, kind=kind, **fields).first(),
        what=f"{kind} planned",
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def harness(transactional_db, settings, tmp_path, sms_dir):
    """start(n, queue=..., **settings) -> workers; the test process and its workers share the settings."""
    started: list[Worker] = []
    queues: set[str] = set()
    mail_dir = tmp_path / "mail"
    hold = tmp_path / "hold-sms"
    common = {
        "OPD_SMS_BACKEND": "notifications.backends.FileSmsBackend",
        "OPD_SMS_FILE_DIR": str(sms_dir),
        "OPD_SMS_FILE_HOLD_PATH": str(hold),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    settings.OPD_SMS_FILE_HOLD_PATH = str(hold)

    class Harness:
        sms = sms_dir
        mail = mail_dir
        hold_file = hold

        @staticmethod
        def queue() -> str:
            name = f"notif-test-{uuid.uuid4().hex[:10]}"
            queues.add(name)
            return name

        @staticmethod
        def use_queue(name: str) -> None:
            """Where this test process (bookings, dispatch) sends its tasks from now on."""
            settings.OPD_NOTIFICATIONS_QUEUE = name

        @staticmethod
        def start_beat(schedule: dict) -> Beat:
            beat = Beat(
                queue="-", folder=tmp_path / "workers", overrides={**common, "CELERY_BEAT_SCHEDULE": schedule}
            ).spawn()
            started.append(beat)
            return beat.wait_ready()

        @staticmethod
        def start(count: int = 1, *, queue: str, **overrides) -> list[Worker]:
            return Harness.start_each([queue] * count, **overrides)

        @staticmethod
        def start_each(queues: list[str], **overrides) -> list[Worker]:
            """One worker per queue, started side by side."""
            workers = [
                Worker(queue=queue, folder=tmp_path / "workers", overrides={**common, **overrides}).spawn()
                for queue in queues
            ]
            started.extend(workers)
            return [worker.wait_ready() for worker in workers]

    yield Harness
    for worker in started:
        worker.stop()
    for name in queues:
        purge_queue(name)


def sms_only(patient, staff_user):
    contact_preference_set(
        actor=staff_user,
        patient=patient,
        email_enabled=False,
        sms_enabled=True,
        in_app_enabled=False,
        preferred_channel=PreferredChannel.SMS,
    )


def lines_for(harness, notification) -> list[dict]:
    return [
        line for line in sms_lines(harness.sms) if line["message_id"] == f"opd-notification-{notification.pk}"
    ]


def emails_with(harness, message_id: str) -> int:
    return sum(path.read_text().count(f"Message-ID: <{message_id}@") for path in harness.mail.glob("*.log"))


def test_a_booking_produces_exactly_one_confirmation_per_channel(
    harness, patient, doctor, department, staff_user
):
    queue = harness.queue()
    harness.use_queue(queue)
    harness.start(1, queue=queue)

    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    confirmations = Notification.objects.filter(appointment=appointment, kind=Kind.BOOKING_CONFIRMATION)
    wait_until(lambda: set(confirmations.values_list("status", flat=True)) == {Status.SENT}, what="sent")
    # The same event delivered again, and each send task duplicated: still one message each.
    appointment_notify_booked(appointment_id=appointment.pk)
    for notification in confirmations:
        enqueue_send(notification.pk)
        enqueue_send(notification.pk)
    wait_until(lambda: queue_drained(queue), what="the duplicates to run")

    assert sorted(confirmations.values_list("channel", flat=True)) == ["email", "in_app", "sms"]
    assert list(confirmations.values_list("attempts", flat=True)) == [1, 1, 1]
    sms = confirmations.get(channel="sms")
    email = confirmations.get(channel="email")
    assert len(lines_for(harness, sms)) == 1
    assert emails_with(harness, f"opd-notification-{email.pk}") == 1
    # The reminders wait for their time.
    assert set(
        Notification.objects.filter(appointment=appointment, kind=Kind.REMINDER).values_list(
            "status", flat=True
        )
    ) == {Status.QUEUED}


def test_a_due_reminder_is_sent_once_when_dispatch_runs_twice_on_two_workers(
    harness, patient, doctor, department, staff_user
):
    queue = harness.queue()
    harness.use_queue(queue)
    harness.start(2, queue=queue)
    sms_only(patient, staff_user)
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    reminder = planned(appointment, Kind.REMINDER, lead_minutes=1440)
    # The day-before reminder comes due.
    Notification.objects.filter(pk=reminder.pk).update(next_attempt_at=timezone.now())

    # Beat fires twice (each run lands on one of the two workers), and once more here; plus duplicate
    # send tasks, as redelivery after a lost acknowledgement would make.
    dispatch_due_notifications.apply_async(queue=queue)
    dispatch_due_notifications.apply_async(queue=queue)
    notifications_dispatch_due()
    for _ in range(4):
        enqueue_send(reminder.pk)
    wait_until(lambda: Notification.objects.get(pk=reminder.pk).status == Status.SENT, what="reminder sent")
    wait_until(lambda: queue_drained(queue), what="the duplicates to run")

    reminder.refresh_from_db()
    assert reminder.attempts == 1
    assert len(lines_for(harness, reminder)) == 1
    assert sorted(line["kind"] for line in sms_lines(harness.sms)) == ["booking_confirmation", "reminder"]
    two_hours = Notification.objects.get(appointment=appointment, kind=Kind.REMINDER, lead_minutes=120)
    assert two_hours.status == Status.QUEUED


def test_a_worker_killed_mid_send_leaves_the_message_to_another_which_sends_it_once(
    harness, patient, doctor, department, staff_user, settings
):
    lease = {"OPD_NOTIFICATION_LEASE_SECONDS": 3}
    first_queue, second_queue = harness.queue(), harness.queue()
    harness.hold_file.touch()  # the file SMS backend waits while this file exists
    first, second = harness.start_each([first_queue, second_queue], **lease)
    sms_only(patient, staff_user)

    harness.use_queue(first_queue)
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    confirmation = planned(appointment, Kind.BOOKING_CONFIRMATION)
    wait_until(lambda: Notification.objects.get(pk=confirmation.pk).status == Status.SENDING, what="claimed")
    first.kill()  # SIGKILL in the middle of the send: no outcome recorded, no acknowledgement
    harness.hold_file.unlink()

    claimed = Notification.objects.get(pk=confirmation.pk)
    assert (claimed.status, claimed.attempts) == (Status.SENDING, 1)
    assert sms_lines(harness.sms) == []
    # The lease runs out; the dispatcher (beat, every minute) hands the row to the surviving worker.
    settings.OPD_NOTIFICATION_REDISPATCH_SECONDS = 1
    harness.use_queue(second_queue)
    wait_until(lambda: notifications_dispatch_due() == [confirmation.pk], timeout=10, what="lease expiry")
    wait_until(
        lambda: Notification.objects.get(pk=confirmation.pk).status == Status.SENT, what="sent by the second"
    )
    wait_until(lambda: queue_drained(second_queue), what="the second worker's tasks to run")

    sent = Notification.objects.get(pk=confirmation.pk)
    assert sent.attempts == 2
    assert sent.claim_token != claimed.claim_token
    assert len(lines_for(harness, sent)) == 1
    assert second.process.poll() is None


def test_a_failing_backend_ends_failed_after_n_attempts_with_the_error_recorded(
    harness, patient, doctor, department, staff_user
):
    queue = harness.queue()
    harness.use_queue(queue)
    harness.start(
        1,
        queue=queue,
        OPD_SMS_BACKEND="notifications.backends.HttpSmsBackend",
        OPD_SMS_HTTP_URL=f"http://127.0.0.1:{closed_port()}/messages",
        OPD_NOTIFICATION_MAX_ATTEMPTS=3,
        OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS=0.2,
    )
    sms_only(patient, staff_user)

    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    confirmation = planned(appointment, Kind.BOOKING_CONFIRMATION)
    wait_until(lambda: Notification.objects.get(pk=confirmation.pk).status == Status.FAILED, what="failed")

    failed = Notification.objects.get(pk=confirmation.pk)
    assert failed.attempts == 3
    assert failed.last_error.startswith("attempt 3: DeliveryError: The SMS provider could not be reached")
    assert "Connection refused" in failed.last_error
    assert failed.finished_at is not None
    assert failed.next_attempt_at is None


def test_cancelled_appointments_get_no_reminder(harness, org, doctor, department, staff_user, monkeypatch):
    queue = harness.queue()
    harness.use_queue(queue)
    harness.start(1, queue=queue)
    told, missed = PatientFactory(organization=org), PatientFactory(organization=org)
    for patient in (told, missed):
        sms_only(patient, staff_user)
    cancelled = appointment_book(actor=staff_user, patient=told, slot=future_slot(doctor, department))
    planned(cancelled, Kind.REMINDER)
    appointment_cancel(actor=staff_user, appointment=cancelled, reason="Clinic closed")
    # A cancellation whose event never reached us (subscriber down): its reminders stay queued.
    unnoticed = appointment_book(actor=staff_user, patient=missed, slot=future_slot(doctor, department))
    planned(unnoticed, Kind.REMINDER)
    monkeypatch.setitem(events._subscribers, events.APPOINTMENT_CANCELLED, [])
    appointment_cancel(actor=staff_user, appointment=unnoticed)

    reminders = Notification.objects.filter(appointment__in=[cancelled, unnoticed], kind=Kind.REMINDER)
    reminders.update(next_attempt_at=timezone.now())  # their time comes
    notifications_dispatch_due()
    for reminder in reminders:
        enqueue_send(reminder.pk)
    wait_until(
        lambda: not reminders.filter(status__in=[Status.QUEUED, Status.SENDING]).exists(), what="settled"
    )
    wait_until(
        lambda: Notification.objects.filter(kind=Kind.CANCELLATION, status=Status.SENT).exists(),
        what="cancellation",
    )

    assert set(reminders.values_list("status", flat=True)) == {Status.CANCELLED}
    kinds = sorted(line["kind"] for line in sms_lines(harness.sms))
    assert kinds == ["booking_confirmation", "booking_confirmation", "cancellation"]


def test_beat_runs_the_dispatcher_by_itself(harness, patient, doctor, department, staff_user):
    from django_celery_beat.models import PeriodicTask

    queue = harness.queue()
    harness.use_queue(queue)
    harness.start(1, queue=queue)
    sms_only(patient, staff_user)
    appointment = appointment_book(actor=staff_user, patient=patient, slot=future_slot(doctor, department))
    reminder = planned(appointment, Kind.REMINDER, lead_minutes=1440)
    Notification.objects.filter(pk=reminder.pk).update(next_attempt_at=timezone.now())

    # Every second instead of every minute; nobody calls the dispatcher: beat does.
    harness.start_beat(
        {
            "notifications.dispatch_due": {
                "task": "notifications.dispatch_due",
                "schedule": 1.0,
                "options": {"queue": queue},
            }
        }
    )
    wait_until(
        lambda: Notification.objects.get(pk=reminder.pk).status == Status.SENT, what="sent by beat's run"
    )

    assert PeriodicTask.objects.filter(task="notifications.dispatch_due").exists()
    assert len(lines_for(harness, reminder)) == 1


def test_a_booking_made_while_the_broker_is_down_still_plans_its_messages(
    harness, patient, doctor, department, staff_user
):
    """The booking's messages are planned by a worker; when the task cannot be queued, the booking's own
    process plans them (and the dispatcher queues their sends once the broker is back)."""
    slot = future_slot(doctor, department)
    script = (
        "import django; django.setup()\n"
        "from opd.core.models import User\n"
        "from patients.models import Patient\n"
        "from scheduling.models import Slot\n"
        "from scheduling.services import appointment_book\n"
        f"a = appointment_book(actor=User.objects.get(pk={staff_user.pk}), "
        f"patient=Patient.objects.get(pk={patient.pk}), slot=Slot.objects.get(pk={slot.pk}))\n"
        "print(a.pk)\n"
    )
    env = process_env({}, CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0")
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    appointment_id = int(done.stdout.split()[-1])
    kinds = set(Notification.objects.filter(appointment_id=appointment_id).values_list("kind", flat=True))
    assert kinds == {Kind.BOOKING_CONFIRMATION, Kind.REMINDER}
    assert "broker unavailable" in done.stderr
