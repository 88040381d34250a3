"""A process killed between a booking's commit and its on-commit handlers loses none of their effects.

A child process books through the service and SIGKILLs itself the moment the transaction has committed,
before any handler runs: no confirmation is planned, no analytics mark made, no queue push sent, and the
patients' slot listing not told. The relay (the `core.outbox_relay` task in a real Celery worker) then
delivers the booking's outbox row: the patient gets one confirmation, the statistics count the booking,
the doctor's live queue (the Redis channel layer's group) gets the booking with its version, and the next
listing shows the seat taken. Delivered a second time (as when the relay's mark is lost), the event changes
nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from analytics import caching
from analytics import selectors as stats
from notifications.models import Kind, Notification, Status
from opd.core import events
from opd.core.models import OutboxEvent
from opd.core.tasks import outbox_relay
from scheduling import realtime
from scheduling.models import Appointment
from tests.conftest import wait_until
from tests.crash import run_killed_after_commit
from tests.factories import SlotFactory
from tests.scheduling.queue_helpers import isolate_channel_layer, move_to_daytime_zone

from .conftest import sms_lines
from .test_real_worker import harness, sms_only  # noqa: F401 (harness is a fixture)
from .worker import process_env, queue_drained

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The child's change: a booking (it dies right after the commit, before the on-commit hooks).
BOOK = """
from opd.core.models import User
from patients.models import Patient
from scheduling.models import Slot
from scheduling.services import appointment_book

actor, patient, slot = (int(arg) for arg in sys.argv[1:4])
appointment_book(
    actor=User.objects.get(pk=actor), patient=Patient.objects.get(pk=patient), slot=Slot.objects.get(pk=slot)
)
"""


def appointments_today(admin_user, clinic) -> int:
    scope = stats.resolve_scope(admin_user, clinic_ids=[clinic.pk])
    today = timezone.localdate(timezone=clinic.tz)
    (row,) = stats.daily_statistics(scope, today, today)
    return row["appointments"]


def test_a_booking_whose_process_is_killed_after_the_commit_still_confirms_counts_and_pushes_once(
    harness,  # noqa: F811
    api_as,
    settings,
    admin_user,
    staff_user,
    patient,
    doctor,
    department,
    clinic,
):
    isolate_channel_layer(settings)
    move_to_daytime_zone(clinic)
    clinic.refresh_from_db()
    sms_only(patient, staff_user)
    queue = harness.queue()
    harness.use_queue(queue)
    slot = SlotFactory(
        doctor=doctor,
        department=department,
        capacity=4,
        start=timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=30),
    )
    # A new token for today's month: figures cached by an earlier run of this test (same ids) are not read.
    caching.bump(clinic.pk, timezone.localdate(timezone=clinic.tz))
    assert appointments_today(admin_user, clinic) == 0  # and cached for the open day
    # The doctor's queue group, heard on a channel of the test's own (the consumer that would pass it on
    # to a socket, and drop a repeated version, is tests/scheduling/test_outbox_redelivery.py's).
    layer = get_channel_layer()
    listener = f"outbox-test.{uuid.uuid4().hex}"
    async_to_sync(layer.group_add)(realtime.group_name(f"doctor:{doctor.pk}"), listener)
    confirmations = Notification.objects.filter(kind=Kind.BOOKING_CONFIRMATION)
    # A patient's listing of the doctor's day, answered from the cache from its second reading on.
    looking = api_as(patient.user)

    def seats_taken() -> int:
        params = {"doctor": doctor.pk, "date_from": slot.date, "date_to": slot.date, "available": "true"}
        response = looking.get("/api/v1/slots/", params)
        assert response.status_code == 200, response.content
        (row,) = [row for row in response.json()["results"] if row["id"] == slot.pk]
        return row["booked_count"]

    assert seats_taken() == 0

    async def next_message(timeout: float) -> dict | None:
        try:
            return await asyncio.wait_for(layer.receive(listener), timeout=timeout)
        except TimeoutError:
            return None

    def relay_until_delivered() -> None:
        outbox_relay.apply_async(queue=queue)
        wait_until(
            lambda: OutboxEvent.objects.filter(event=events.APPOINTMENT_BOOKED, delivered_at__isnull=False),
            what=lambda: f"the relay to deliver:\n{workers[0].log()}",
        )
        wait_until(lambda: queue_drained(queue), what="the confirmation's tasks to run")

    workers = harness.start(1, queue=queue, CHANNEL_LAYERS=settings.CHANNEL_LAYERS)
    run_killed_after_commit(
        BOOK,
        [staff_user.pk, patient.pk, slot.pk],
        process_env({"CHANNEL_LAYERS": settings.CHANNEL_LAYERS, "OPD_OUTBOX_GRACE_SECONDS": 0}),
    )

    # The booking committed; everything its handlers do died with the process.
    booked = Appointment.objects.get()
    row = OutboxEvent.objects.get(event=events.APPOINTMENT_BOOKED)
    assert (row.payload["appointment_id"], row.delivered_at) == (booked.pk, None)
    assert async_to_sync(next_message)(0.5) is None
    assert not confirmations.exists()
    assert appointments_today(admin_user, clinic) == 0  # the mark never happened
    assert seats_taken() == 0  # the listing's versions were never bumped
    version = row.payload["versions"][f"doctor:{doctor.pk}"]

    relay_until_delivered()
    assert seats_taken() == 1

    pushed = async_to_sync(next_message)(20)
    assert pushed is not None
    assert (pushed["type"], pushed["version"], pushed["action"]) == ("queue.event", version, "booked")
    assert pushed["appointment_id"] == booked.pk

    # Delivered again (the relay's mark lost): the same version again, which a socket has passed on.
    OutboxEvent.objects.filter(pk=row.pk).update(delivered_at=None, due_at=timezone.now())
    relay_until_delivered()
    again = async_to_sync(next_message)(20)
    assert again is not None
    assert (again["version"], again["appointment_id"]) == (version, booked.pk)
    assert async_to_sync(next_message)(0.5) is None

    sms = confirmations.get(channel="sms")
    assert sms.status == Status.SENT
    assert (
        len([line for line in sms_lines(harness.sms) if line["message_id"] == f"opd-notification-{sms.pk}"])
        == 1
    )
    assert confirmations.count() == 1
    assert appointments_today(admin_user, clinic) == 1
    assert OutboxEvent.objects.get(event=events.APPOINTMENT_BOOKED).attempts == 2
