"""The portal inbox: a patient's in-app messages, unread count, mark as read, live over ws/notifications/."""

from __future__ import annotations

import itertools

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from notifications.models import Channel, Kind, Notification, Status
from notifications.selectors import unread_count
from notifications.services import (
    new_notification,
    notification_enqueue,
    notification_mark_read,
    notifications_mark_all_read,
)
from tests.conftest import assert_error
from tests.notifications.test_in_app import Socket, keep_the_test_connection  # noqa: F401  # a fixture
from tests.scheduling.queue_helpers import run_scenario

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def deliver(patient, committed, *, subject="Appointment booked", channel=Channel.IN_APP, **kwargs):
    """An in-app message to the patient, written and sent as the booking flow does (eager Celery)."""
    with committed():
        row, _ = notification_enqueue(
            row=new_notification(
                organization_id=patient.organization_id,
                patient_id=patient.pk,
                user_id=patient.user_id,
                channel=channel,
                to="" if channel == Channel.IN_APP else "ada@example.org",
                kind=Kind.BOOKING_CONFIRMATION,
                subject=subject,
                body="Tue 24 Nov 2026, 09:00 Europe/London with Dr House.",
                dedup_key=f"inbox-test:{next(_keys)}",
                **kwargs,
            )
        )
    row.refresh_from_db()
    return row


def test_it_lists_only_my_delivered_in_app_messages(api_as, patient, other_patient, committed):
    mine = deliver(patient, committed)
    deliver(other_patient, committed, subject="Theirs")
    deliver(patient, committed, channel=Channel.EMAIL, subject="An e-mail")
    import datetime as dt

    from django.utils import timezone

    later = deliver(
        patient, committed, subject="A reminder", scheduled_for=timezone.now() + dt.timedelta(days=1)
    )
    assert later.status == Status.QUEUED

    answer = api_as(patient.user).get("/api/v1/me/messages/")

    assert answer.status_code == 200
    assert [m["id"] for m in answer.json()["results"]] == [mine.pk]
    assert answer.json()["results"][0]["read_at"] is None
    assert api_as(patient.user).get("/api/v1/me/messages/unread/").json() == {"unread_count": 1}


def test_it_marks_one_read_once_and_refuses_another_users_message(api_as, patient, other_patient, committed):
    mine, theirs = deliver(patient, committed), deliver(other_patient, committed)
    client = api_as(patient.user)

    first = client.post(f"/api/v1/me/messages/{mine.pk}/read/")
    second = client.post(f"/api/v1/me/messages/{mine.pk}/read/")
    refused = client.post(f"/api/v1/me/messages/{theirs.pk}/read/")

    assert first.status_code == 200
    assert first.json()["read_at"] is not None
    assert second.json()["read_at"] == first.json()["read_at"]  # the first read time is kept
    assert_error(refused, 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert unread_count(patient.user) == 0


def test_it_marks_all_read(api_as, patient, other_patient, committed):
    deliver(patient, committed)
    deliver(patient, committed)
    theirs = deliver(other_patient, committed)

    answer = api_as(patient.user).post("/api/v1/me/messages/read-all/")

    assert answer.json() == {"marked": 2, "unread_count": 0}
    assert unread_count(patient.user) == 0
    assert unread_count(other_patient.user) == 1
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_portal_page_lists_messages_with_the_unread_count_in_the_navigation(client, patient, committed):
    message = deliver(patient, committed, subject="Appointment moved")
    client.force_login(patient.user)

    page = client.get(reverse("portal:messages"))

    text = page.content.decode()
    assert page.status_code == 200
    assert "Appointment moved" in text
    assert "<span data-unread-count>1</span>" in text
    assert reverse("portal:message-read", args=[message.pk]) in text
    client.post(reverse("portal:message-read", args=[message.pk]))
    after = client.get(reverse("portal:messages")).content.decode()
    assert "<span data-unread-count>0</span>" in after
    assert "All read" in after


def test_the_page_refuses_marking_another_patients_message(client, patient, other_patient, committed):
    theirs = deliver(other_patient, committed)
    client.force_login(patient.user)

    assert client.post(reverse("portal:message-read", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("portal:messages-read-all")).status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_staff_are_sent_to_their_own_pages(client, staff_user):
    client.force_login(staff_user)

    assert client.get(reverse("portal:messages")).status_code == 302


def test_the_socket_pushes_a_new_message_with_the_count_and_the_count_after_reading(patient, committed):
    """Over the real (Redis) channel layer: delivery pushes the message and the unread count; marking read
    elsewhere pushes the new count."""

    async def scenario():
        socket = Socket(patient.user)
        assert (await socket.connect())[0]
        first = await sync_to_async(deliver)(patient, committed)
        pushed_first = await socket.receive_json_from(timeout=5)
        await sync_to_async(deliver)(patient, committed, subject="Reminder")
        pushed_second = await socket.receive_json_from(timeout=5)

        def read_one():
            with committed():
                notification_mark_read(user=patient.user, notification_id=first.pk)

        await sync_to_async(read_one)()
        after_one = await socket.receive_json_from(timeout=5)

        def read_all():
            with committed():
                notifications_mark_all_read(user=patient.user)

        await sync_to_async(read_all)()
        after_all = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return first, pushed_first, pushed_second, after_one, after_all

    first, pushed_first, pushed_second, after_one, after_all = run_scenario(scenario)

    assert (pushed_first["type"], pushed_first["id"], pushed_first["unread_count"]) == (
        "notification",
        first.pk,
        1,
    )
    assert (pushed_second["subject"], pushed_second["unread_count"]) == ("Reminder", 2)
    assert after_one == {"type": "unread", "unread_count": 1}
    assert after_all == {"type": "unread", "unread_count": 0}
    assert Notification.objects.filter(read_at__isnull=False).count() == 2
