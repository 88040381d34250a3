"""The outbox's sender thread (opd.core.outbox.send_after_response): handlers subscribed with
after_response=True (the booking's Celery task, the live queues' channel-layer sends) run after the change
has answered, on one thread per process; the row is marked delivered only once they all succeeded, so what
they did not do is the relay's, and a process that exits cleanly sends what is still queued."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from opd.celery import app as celery_app
from opd.core import events
from opd.core.models import OutboxEvent
from opd.core.outbox import drain_sender, flush_marks
from opd.core.services.outbox import outbox_relay_once
from scheduling.api import serializers as scheduling_serializers
from scheduling.models import Appointment
from tests.conftest import wait_until
from tests.notifications.worker import process_env

from .test_outbox import later

EVENT = "test.outbox.sender"
APPOINTMENTS = "/api/v1/appointments/"


@pytest.fixture
def after_response(settings):
    settings.OPD_EVENTS_SEND_AFTER_RESPONSE = True
    yield
    drain_sender()  # nothing of this test's left for the next one's database


@pytest.fixture
def subscribed():
    """subscribe(handler, after_response=...) for EVENT, undone after the test."""
    added: list = []

    def subscribe(handler, *, after_response: bool) -> None:
        events.subscribe(EVENT, handler, after_response=after_response)
        added.append(handler)

    yield subscribe
    for handler in added:
        events.unsubscribe(EVENT, handler)


def delivered(row: OutboxEvent) -> bool:
    row.refresh_from_db()
    return row.delivered_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_change_answers_before_its_after_response_handler_has_run_and_the_row_is_marked_after_it(
    after_response, subscribed
):
    release, heard = threading.Event(), []

    def slow_send(**payload) -> None:
        release.wait(30)  # a broker that is slow to answer
        heard.append((threading.current_thread().name, payload))

    subscribed(slow_send, after_response=True)
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
    row = OutboxEvent.objects.get()

    # The commit returned while the send is still waiting: nothing sent, the row not marked.
    flush_marks()
    assert heard == []
    assert not delivered(row)

    release.set()
    wait_until(lambda: heard, what="the send")
    assert heard == [("outbox-sender", {"appointment_id": 7})]
    wait_until(lambda: flush_marks() or delivered(row), what="the mark")
    assert outbox_relay_once(now=later(3600)).delivered == 0  # nothing left for the relay
    assert len(heard) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_after_response_handler_leaves_the_event_to_the_relay(after_response, subscribed):
    calls: list[dict] = []

    def failing_send(**payload) -> None:
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("the broker is away")

    subscribed(failing_send, after_response=True)
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
    row = OutboxEvent.objects.get()
    wait_until(lambda: calls, what="the first send")
    drain_sender()
    flush_marks()
    assert not delivered(row)

    report = outbox_relay_once(now=later(django_settings.OPD_OUTBOX_GRACE_SECONDS + 1))

    assert (report.delivered, report.failed) == (1, 0)
    assert calls == [{"appointment_id": 7}, {"appointment_id": 7}]
    assert delivered(row)


@pytest.mark.django_db(transaction=True)
def test_an_in_request_handler_that_failed_keeps_the_row_undelivered_though_the_sender_succeeds(
    after_response, subscribed
):
    sent: list[dict] = []

    def failing(**payload) -> None:
        raise RuntimeError("templates missing")

    subscribed(failing, after_response=False)
    subscribed(lambda **payload: sent.append(payload), after_response=True)
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
    wait_until(lambda: sent, what="the send")
    drain_sender()
    flush_marks()

    assert not delivered(OutboxEvent.objects.get())


CLEAN_EXIT = r"""
import django

django.setup()

from django.db import transaction

from opd.core import events

def slow_send(**payload):
    import time
    time.sleep(0.5)  # still queued or running when the script ends
    with open(OUT, "a") as out:
        out.write(repr(payload) + "\n")

events.subscribe("test.outbox.sender", slow_send, after_response=True)
for n in range(3):
    with transaction.atomic():
        events.publish("test.outbox.sender", appointment_id=n)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_process_that_exits_cleanly_sends_what_is_queued_and_marks_it(tmp_path):
    out = tmp_path / "sent.txt"
    subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", f"OUT = {str(out)!r}\n" + CLEAN_EXIT],
        cwd=django_settings.BASE_DIR,
        env=process_env({"OPD_OUTBOX_MARK_INTERVAL_SECONDS": 60, "OPD_EVENTS_SEND_AFTER_RESPONSE": True}),
        check=True,
        timeout=120,
    )

    assert out.read_text().splitlines() == [f"{{'appointment_id': {n}}}" for n in range(3)]
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def queued_tasks(queue: str) -> list[dict]:
    """The task messages waiting in `queue` on the real broker (kombu's Redis list), oldest first."""
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client
        return [json.loads(raw)["headers"] for raw in reversed(client.lrange(queue, 0, -1))]


@pytest.mark.django_db(transaction=True)
def test_a_booking_answers_then_its_confirmation_task_reaches_the_broker_once(
    after_response, api_as, staff_user, patient, slot, tasks_queued_not_run
):
    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert response.status_code == 201, response.content
    appointment = Appointment.objects.get()
    wait_until(lambda: queued_tasks(tasks_queued_not_run), what="the task on the broker")
    drain_sender()
    tasks = queued_tasks(tasks_queued_not_run)
    assert [(t["task"], t["argsrepr"]) for t in tasks] == [
        ("notifications.plan_booking_messages", f"({appointment.pk},)")
    ]
    flush_marks()
    assert delivered(OutboxEvent.objects.get(event=events.APPOINTMENT_BOOKED))


@pytest.mark.django_db(transaction=True)
def test_a_bookings_answer_is_serialized_after_its_transaction_has_committed(
    api_as, staff_user, patient, slot, tasks_queued_not_run, monkeypatch
):
    # The patient's and the slot's row locks are held until COMMIT: the answer is built after it.
    seen: list[bool] = []
    real = scheduling_serializers.AppointmentSerializer.to_representation

    def spy(self, instance):
        seen.append(connection.in_atomic_block)
        return real(self, instance)

    monkeypatch.setattr(scheduling_serializers.AppointmentSerializer, "to_representation", spy)
    response = api_as(staff_user).post(APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["id"] == Appointment.objects.get().pk
    assert seen == [False]


@pytest.mark.django_db(transaction=True)
def test_with_an_idempotency_key_the_stored_answer_is_the_one_sent(
    api_as, staff_user, patient, slot, tasks_queued_not_run
):
    client = api_as(staff_user)
    body = {"slot": slot.pk, "patient": patient.pk}

    first = client.post(APPOINTMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(APPOINTMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Appointment.objects.count() == 1
