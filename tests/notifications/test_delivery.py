"""The outbox: one row per dedup key, one sender per row (claim + lease), retries, failure, resend."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from notifications import conf, subscribers
from notifications.models import Channel, Kind, Notification, Status
from notifications.services import delivery as delivery_module
from notifications.services import (
    new_notification,
    notification_enqueue,
    notification_resend,
    notification_send,
    notifications_dispatch_due,
)
from opd.core.errors import Conflict
from opd.core.models import AuditEvent

from .conftest import sms_lines

pytestmark = pytest.mark.django_db


def enqueue(patient, *, channel=Channel.SMS, key="test:1", scheduled_for=None, **extra):
    to = {Channel.SMS: patient.phone, Channel.EMAIL: patient.email, Channel.IN_APP: ""}[channel]
    notification, _ = notification_enqueue(
        row=new_notification(
            organization_id=patient.organization_id,
            patient_id=patient.pk,
            user_id=patient.user_id,
            channel=channel,
            kind=Kind.BOOKING_CONFIRMATION,
            to=to,
            subject="Appointment booked",
            body="See you on Tuesday.",
            dedup_key=key,
            scheduled_for=scheduled_for,
            **extra,
        )
    )
    return notification


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeProvider(BaseHTTPRequestHandler):
    """A real HTTP server in a thread, answering like an SMS provider would."""

    status = 200
    requests: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        type(self).requests.append((dict(self.headers), json.loads(self.rfile.read(length))))
        body = json.dumps({"id": "prov-123"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(settings):
    handler = type("Provider", (FakeProvider,), {"requests": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OPD_SMS_BACKEND = "notifications.backends.HttpSmsBackend"
    settings.OPD_SMS_HTTP_URL = f"http://127.0.0.1:{server.server_address[1]}/messages"
    settings.OPD_SMS_HTTP_TOKEN = "secret-token"
    yield handler
    server.shutdown()
    server.server_close()


def test_it_writes_one_message_per_dedup_key(patient, committed):
    with committed():
        first = enqueue(patient, key="appt:1:booking_confirmation:sms")
        again, created = notification_enqueue(
            row=new_notification(
                organization_id=patient.organization_id,
                patient_id=patient.pk,
                channel=Channel.SMS,
                kind=Kind.BOOKING_CONFIRMATION,
                to=patient.phone,
                body="another text",
                dedup_key="appt:1:booking_confirmation:sms",
            )
        )

    assert not created
    assert again.pk == first.pk
    assert Notification.objects.filter(dedup_key="appt:1:booking_confirmation:sms").count() == 1


def test_it_sends_an_immediate_message_after_commit_and_only_once(patient, committed, sms_dir):
    with committed():
        notification = enqueue(patient)
        assert sms_lines(sms_dir) == []  # nothing leaves before the commit

    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert notification.attempts == 1
    assert notification.sent_at is not None
    assert notification_send(notification_id=notification.pk).status == Status.SENT
    lines = sms_lines(sms_dir)
    assert [line["message_id"] for line in lines] == [f"opd-notification-{notification.pk}"]
    assert lines[0]["to"] == patient.phone
    assert lines[0]["body"] == "See you on Tuesday."


def test_it_sends_email_with_html_and_a_stable_message_id(patient, committed):
    with committed():
        notification = enqueue(patient, channel=Channel.EMAIL, body_html="<p>See you</p>")

    notification.refresh_from_db()
    assert notification.status == Status.SENT
    (message,) = mail.outbox
    assert message.to == [patient.email]
    assert message.subject == "Appointment booked"
    assert message.extra_headers["Message-ID"].startswith(f"<opd-notification-{notification.pk}@")
    assert message.alternatives[0][0] == "<p>See you</p>"


def test_it_does_not_send_a_message_before_it_is_due(patient, sms_dir):
    later = timezone.now() + dt.timedelta(hours=2)
    notification = enqueue(patient, scheduled_for=later)

    outcome = notification_send(notification_id=notification.pk)

    assert outcome.status == "not_due"
    assert 7190 < outcome.retry_in < 7210
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Status.QUEUED, 0)
    assert sms_lines(sms_dir) == []


def test_it_leaves_a_row_alone_while_another_worker_holds_its_lease(patient, sms_dir):
    notification = enqueue(patient)
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENDING,
        attempts=1,
        claim_token="someone-else",
        next_attempt_at=timezone.now() + dt.timedelta(seconds=200),
    )

    outcome = notification_send(notification_id=notification.pk)

    assert outcome.status == "not_due"
    assert sms_lines(sms_dir) == []
    notification.refresh_from_db()
    assert (notification.status, notification.claim_token) == (Status.SENDING, "someone-else")


def test_it_takes_over_a_send_whose_worker_died_once_the_lease_expired(patient, sms_dir):
    notification = enqueue(patient)
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENDING,
        attempts=1,
        claim_token="dead-worker",
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1),
    )

    assert notification_send(notification_id=notification.pk).status == Status.SENT

    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert notification.attempts == 2
    assert len(sms_lines(sms_dir)) == 1


def test_a_worker_that_lost_its_lease_cannot_record_an_outcome(patient):
    notification = enqueue(patient)
    Notification.objects.filter(pk=notification.pk).update(status=Status.SENDING, claim_token="new-owner")

    written = delivery_module._record(notification.pk, "old-owner", status=Status.FAILED, last_error="late")

    assert written is False
    notification.refresh_from_db()
    assert notification.status == Status.SENDING


def test_it_retries_with_exponential_backoff_and_fails_after_the_last_attempt(patient, settings):
    settings.OPD_SMS_BACKEND = "notifications.backends.HttpSmsBackend"
    settings.OPD_SMS_HTTP_URL = f"http://127.0.0.1:{closed_port()}/sms"
    settings.OPD_NOTIFICATION_MAX_ATTEMPTS = 3
    settings.OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS = 30
    notification = enqueue(patient)

    delays = []
    for _ in range(3):
        before = timezone.now()
        outcome = notification_send(notification_id=notification.pk)
        notification.refresh_from_db()
        if outcome.status == "retry":
            delays.append(round((notification.next_attempt_at - before).total_seconds()))
            # The next attempt is due only after the backoff; move it to now, as time passing would.
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())

    assert delays == [30, 60]
    assert notification.status == Status.FAILED
    assert notification.attempts == 3
    assert notification.next_attempt_at is None
    assert notification.last_error.startswith(
        "attempt 3: DeliveryError: The SMS provider could not be reached"
    )
    assert notification_send(notification_id=notification.pk).status == Status.FAILED


def test_backoff_doubles_up_to_its_cap(settings):
    settings.OPD_NOTIFICATION_RETRY_BACKOFF_SECONDS = 30
    settings.OPD_NOTIFICATION_RETRY_BACKOFF_MAX = 200

    assert [conf.backoff_seconds(n) for n in range(1, 6)] == [30, 60, 120, 200, 200]


def test_it_posts_sms_to_the_http_provider_with_token_and_idempotency_key(patient, provider):
    notification = enqueue(patient)

    assert notification_send(notification_id=notification.pk).status == Status.SENT

    (headers, body), *_ = provider.requests
    assert headers["Authorization"] == "Bearer secret-token"
    assert headers["Idempotency-Key"] == f"opd-notification-{notification.pk}"
    assert body == {
        "to": patient.phone,
        "from": "OPD",
        "body": "See you on Tuesday.",
        "reference": f"opd-notification-{notification.pk}",
    }
    notification.refresh_from_db()
    assert notification.provider_message_id == "prov-123"


def test_a_refusal_by_the_provider_fails_at_once(patient, provider):
    provider.status = 422
    notification = enqueue(patient)

    assert notification_send(notification_id=notification.pk).status == Status.FAILED

    notification.refresh_from_db()
    assert notification.attempts == 1
    assert "HTTP 422" in notification.last_error


def test_a_provider_outage_is_retried(patient, provider):
    provider.status = 503
    notification = enqueue(patient)

    outcome = notification_send(notification_id=notification.pk)

    assert outcome.status == "retry"
    notification.refresh_from_db()
    assert notification.status == Status.QUEUED
    assert "HTTP 503" in notification.last_error


def test_dispatch_enqueues_each_due_row_once_however_often_it_runs(
    patient, monkeypatch, django_capture_on_commit_callbacks
):
    enqueued = []
    monkeypatch.setattr(subscribers, "enqueue_send", enqueued.append)
    soon = timezone.now() + dt.timedelta(minutes=1)
    due = [enqueue(patient, key=f"r:{n}", scheduled_for=soon) for n in range(3)]
    enqueue(patient, key="r:later", scheduled_for=timezone.now() + dt.timedelta(hours=1))
    # A minute passes: the first three reminders come due.
    Notification.objects.filter(pk__in=[n.pk for n in due]).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )

    # The sends are queued by the subscriber of NOTIFICATIONS_DISPATCHED; beat runs the dispatcher outside
    # a transaction, where that is at once, and a test inside one, on (captured) commit.
    with django_capture_on_commit_callbacks(execute=True):
        first = notifications_dispatch_due()
        second = notifications_dispatch_due()

    assert sorted(first) == sorted(n.pk for n in due)
    assert second == []
    assert sorted(enqueued) == sorted(n.pk for n in due)


def test_dispatch_enqueues_again_a_row_whose_task_was_lost(patient, monkeypatch, settings):
    settings.OPD_NOTIFICATION_REDISPATCH_SECONDS = 120
    enqueued = []
    monkeypatch.setattr(subscribers, "enqueue_send", enqueued.append)
    notification = enqueue(patient)  # enqueued at creation (dispatched_at = now), the task never ran

    assert notifications_dispatch_due() == []  # too recent to presume lost
    Notification.objects.filter(pk=notification.pk).update(
        dispatched_at=timezone.now() - dt.timedelta(minutes=3)
    )
    assert notifications_dispatch_due() == [notification.pk]


def test_dispatch_takes_over_a_send_whose_lease_expired(patient, monkeypatch):
    enqueued = []
    monkeypatch.setattr(subscribers, "enqueue_send", enqueued.append)
    notification = enqueue(patient)
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENDING, claim_token="dead", next_attempt_at=long_ago, dispatched_at=long_ago
    )

    assert notifications_dispatch_due() == [notification.pk]


def test_it_resends_a_sent_message_as_a_new_row_to_the_current_address(
    patient, staff_user, committed, sms_dir
):
    with committed():
        original = enqueue(patient, key="appt:9:booking_confirmation:sms")
    patient.phone = "+44 20 7946 9999"
    patient.save(update_fields=["phone"])

    with committed():
        first = notification_resend(actor=staff_user, notification=original)
    with committed():
        second = notification_resend(actor=staff_user, notification=first)

    assert first.dedup_key == "appt:9:booking_confirmation:sms:resend:1"
    assert second.dedup_key == "appt:9:booking_confirmation:sms:resend:2"
    assert first.resend_of_id == second.resend_of_id == original.pk
    first.refresh_from_db()
    assert first.status == Status.SENT
    assert first.to == "+44 20 7946 9999"
    assert len(sms_lines(sms_dir)) == 3
    assert AuditEvent.objects.filter(action="notification.resent", actor=staff_user).count() == 2


def test_it_refuses_to_resend_a_message_that_is_still_queued(patient, staff_user):
    notification = enqueue(patient, scheduled_for=timezone.now() + dt.timedelta(hours=1))

    with pytest.raises(Conflict):
        notification_resend(actor=staff_user, notification=notification)
