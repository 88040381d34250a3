"""The outbox (opd.core.outbox): every event is a row of its change's transaction, delivered at once by the
process that committed and, when that process could not, by the relay; at least once, never two relays
on one row at the same time, delivered rows pruned."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from opd.core import events
from opd.core.models import OutboxEvent
from opd.core.outbox import flush_marks
from opd.core.services.outbox import backoff, outbox_event_write, outbox_prune, outbox_relay_once
from tests.conftest import wait_until
from tests.notifications.worker import process_env

EVENT = "test.outbox"


@pytest.fixture
def heard():
    """Every delivery of EVENT in this process, as its payload."""
    seen: list[dict] = []

    def listen(**payload) -> None:
        seen.append(payload)

    events.subscribe(EVENT, listen)
    yield seen
    events.unsubscribe(EVENT, listen)


@pytest.fixture
def failing():
    calls: list[dict] = []

    def fail(**payload) -> None:
        calls.append(payload)
        raise RuntimeError("the broker is away")

    events.subscribe(EVENT, fail)
    yield calls
    events.unsubscribe(EVENT, fail)


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


@pytest.mark.django_db
def test_an_event_is_one_insert_in_the_changes_transaction_and_goes_with_its_rollback(
    heard, django_assert_num_queries
):
    with transaction.atomic():
        with django_assert_num_queries(1):
            events.publish(EVENT, appointment_id=7)
        assert list(OutboxEvent.objects.values_list("event", "payload")) == [(EVENT, {"appointment_id": 7})]
        transaction.set_rollback(True)

    assert not OutboxEvent.objects.exists()
    assert heard == []


@pytest.mark.django_db
def test_a_payload_comes_back_from_the_row_as_the_handlers_got_it():
    payload = {
        "appointment_id": 12,
        "day": dt.date(2026, 12, 6),
        "start": dt.datetime(2026, 12, 6, 9, 30, 0, 123456, tzinfo=dt.UTC),
        "fee": Decimal("12.50"),
        "versions": {"doctor:7": 3, "clinic:2": 9},
        "entry": {"token": "A-3", "at": dt.time(9, 30), "tags": ["a"], "nothing": None},
        "reason": "role_changed",
    }

    events.publish(EVENT, **payload)

    assert OutboxEvent.objects.get().payload == payload


@pytest.mark.django_db
def test_a_payload_json_cannot_carry_fails_the_change_at_once():
    with pytest.raises(TypeError), transaction.atomic():
        events.publish(EVENT, appointment=object())


@pytest.mark.django_db(transaction=True)
def test_the_committing_process_delivers_at_once_then_marks_the_row_and_the_relay_leaves_it(heard):
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
        assert heard == []  # nothing before the commit

    assert heard == [{"appointment_id": 7}]
    flush_marks()
    assert OutboxEvent.objects.get().delivered_at is not None
    assert outbox_relay_once(now=later(3600)).delivered == 0
    assert heard == [{"appointment_id": 7}]


@pytest.mark.django_db(transaction=True)
def test_the_committing_process_marks_what_it_delivered_by_itself_off_the_request(heard, settings):
    settings.OPD_OUTBOX_MARK_INTERVAL_SECONDS = 0.1
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
        events.publish(EVENT, appointment_id=8)

    # No flush asked for: the process's marking thread does it, in one UPDATE for both.
    wait_until(lambda: not OutboxEvent.objects.filter(delivered_at__isnull=True).exists(), what="marked")
    assert len(set(OutboxEvent.objects.values_list("delivered_at", flat=True))) == 1
    assert heard == [{"appointment_id": 7}, {"appointment_id": 8}]


@pytest.mark.django_db(transaction=True)
def test_the_relay_delivers_what_a_dead_process_left_once_its_grace_has_passed(heard, settings):
    # The change committed and its process died before its on-commit handlers: only the row is left.
    row = outbox_event_write(event=EVENT, payload={"appointment_id": 7, "day": dt.date(2026, 12, 6)})

    assert outbox_relay_once(now=later(settings.OPD_OUTBOX_GRACE_SECONDS - 1)).delivered == 0
    assert heard == []

    report = outbox_relay_once(now=later(settings.OPD_OUTBOX_GRACE_SECONDS + 1))

    assert (report.delivered, report.failed) == (1, 0)
    assert heard == [{"appointment_id": 7, "day": dt.date(2026, 12, 6)}]
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert row.attempts == 1
    assert outbox_relay_once(now=later(3600)).delivered == 0
    assert len(heard) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_leaves_the_event_to_the_relay_which_retries_with_back_off(
    heard, failing, settings
):
    settings.OPD_OUTBOX_MAX_ATTEMPTS = 3
    with transaction.atomic():
        events.publish(EVENT, appointment_id=7)
    # The other subscriber heard it; the failure keeps the row undelivered.
    assert (len(heard), len(failing)) == (1, 1)
    flush_marks()
    row = OutboxEvent.objects.get()
    assert row.delivered_at is None

    start = row.due_at + dt.timedelta(seconds=1)
    assert outbox_relay_once(now=start).failed == 1
    row.refresh_from_db()
    assert (row.attempts, row.due_at, row.delivered_at) == (1, start + backoff(1), None)
    assert "the broker is away" in row.last_error
    # Not again before the back-off has passed; then again, waiting twice as long after it.
    assert outbox_relay_once(now=start + backoff(1) - dt.timedelta(seconds=1)).failed == 0
    second = start + backoff(1)
    assert outbox_relay_once(now=second).failed == 1
    row.refresh_from_db()
    assert (row.attempts, row.due_at) == (2, second + backoff(2))
    assert backoff(2) == 2 * backoff(1)
    assert outbox_relay_once(now=second + backoff(2)).failed == 1
    # Three attempts: given up, kept for an operator to read.
    assert outbox_relay_once(now=later(10 * 3600)).failed == 0
    row.refresh_from_db()
    assert row.attempts == 3
    assert len(failing) == 4  # the publishing process's call and three relay attempts
    assert len(heard) == 4  # the others hear it again each time: they are idempotent


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_deliver_each_event_exactly_once():
    ids = [outbox_event_write(event=EVENT, payload={"n": n}).pk for n in range(40)]
    deliveries: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def listen(*, n: int) -> None:
        with lock:
            deliveries.append((threading.current_thread().name, n))

    def relay() -> None:
        try:
            start.wait(timeout=10)
            while outbox_relay_once(limit=5, now=later(3600)).delivered:
                pass
        finally:
            connection.close()

    events.subscribe(EVENT, listen)
    try:
        threads = [threading.Thread(target=relay, name=f"relay-{i}") for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        events.unsubscribe(EVENT, listen)

    assert sorted(n for _, n in deliveries) == list(range(40))
    assert OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_relay_does_not_take_the_events_another_relay_is_delivering():
    for n in range(4):
        outbox_event_write(event=EVENT, payload={"n": n})
    deliveries: list[tuple[str, int]] = []
    first_is_delivering = threading.Event()
    second_is_done = threading.Event()

    def listen(*, n: int) -> None:
        deliveries.append((threading.current_thread().name, n))
        if threading.current_thread().name == "first":
            # The first relay's claim has committed; it stays mid-delivery until the second has run.
            first_is_delivering.set()
            assert second_is_done.wait(timeout=20)

    def first() -> None:
        try:
            outbox_relay_once(limit=2, now=later(3600))
        finally:
            connection.close()

    events.subscribe(EVENT, listen)
    try:
        thread = threading.Thread(target=first, name="first")
        thread.start()
        assert first_is_delivering.wait(timeout=20)
        second = outbox_relay_once(now=later(3600))
        second_is_done.set()
        thread.join(timeout=20)
    finally:
        events.unsubscribe(EVENT, listen)

    assert second.delivered == 2
    assert sorted(n for name, n in deliveries if name == "first") == [0, 1]
    assert sorted(n for name, n in deliveries if name != "first") == [2, 3]


@pytest.mark.django_db
def test_it_prunes_delivered_events_after_the_retention_and_keeps_the_rest():
    old = outbox_event_write(event=EVENT, payload={})
    recent = outbox_event_write(event=EVENT, payload={})
    stuck = outbox_event_write(event=EVENT, payload={})
    OutboxEvent.objects.filter(pk=old.pk).update(delivered_at=timezone.now() - dt.timedelta(hours=25))
    OutboxEvent.objects.filter(pk=recent.pk).update(delivered_at=timezone.now() - dt.timedelta(hours=1))
    OutboxEvent.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - dt.timedelta(days=9))

    assert outbox_prune(older_than=dt.timedelta(hours=24), batch_size=1) == 1

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, stuck.pk}


@pytest.mark.django_db(transaction=True)
def test_the_relay_command_delivers_what_is_due_once(heard, settings, capsys):
    settings.OPD_OUTBOX_GRACE_SECONDS = 0
    outbox_event_write(event=EVENT, payload={"appointment_id": 7})

    call_command("outbox_relay", "--once")

    assert heard == [{"appointment_id": 7}]
    assert "1 delivered, 0 failed" in capsys.readouterr().out
    assert OutboxEvent.objects.get().delivered_at is not None


@pytest.mark.django_db
def test_only_superusers_read_the_outbox_in_the_admin_and_nobody_edits_it(client, superuser, admin_user):
    row = outbox_event_write(event=EVENT, payload={"appointment_id": 7})
    OutboxEvent.objects.filter(pk=row.pk).update(attempts=3, last_error="billing: RuntimeError('down')")
    changelist = reverse("admin:core_outboxevent_changelist")
    change = reverse("admin:core_outboxevent_change", args=[row.pk])

    client.force_login(admin_user)
    assert client.get(changelist).status_code == 403
    client.force_login(superuser)
    assert client.get(changelist).status_code == 200
    page = client.get(change)
    assert "RuntimeError(&#x27;down&#x27;)" in page.content.decode()
    assert client.post(change, {"event": "changed"}).status_code == 403
    assert OutboxEvent.objects.get().event == EVENT


CLEAN_EXIT = r"""
import django

django.setup()

from django.db import transaction

from opd.core import events

with transaction.atomic():
    events.publish("test.outbox", appointment_id=7)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_process_that_exits_cleanly_marks_what_it_delivered_before_it_goes():
    # Its marking thread would wait a minute: the exit marks the row instead of leaving it to the relay.
    subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", CLEAN_EXIT],
        cwd=django_settings.BASE_DIR,
        env=process_env({"OPD_OUTBOX_MARK_INTERVAL_SECONDS": 60}),
        check=True,
        timeout=120,
    )

    assert OutboxEvent.objects.get().delivered_at is not None
