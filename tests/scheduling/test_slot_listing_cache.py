"""A patient's slot listing is answered from the cache (scheduling.listing_cache), and the very next
listing after any committed change shows it: bookings, cancellations, moves, slot changes and the
catalog around them, from this process and from another one. Tokens and tenancy are still checked on
every request."""

import datetime as dt
import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opd.core.models import Role
from opd.core.services import token_revoke
from opd.core.versioned_cache import raw_redis
from scheduling.models import ApprovalStatus, Slot
from scheduling.services import appointment_book, appointment_cancel, appointment_reschedule, slots_generate
from tests.conftest import token_for
from tests.factories import PatientFactory, SlotFactory, UserFactory
from tests.scheduling.asgi_server import asgi_server, post

SLOTS = "/api/v1/slots/"


@pytest.fixture(autouse=True)
def _no_listing_from_an_earlier_test():
    # Redis outlives each test's database transaction; ids are reused after a flush.
    from django.core.cache import cache

    from scheduling import listing_cache

    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern(f"{listing_cache.prefix()}*")
    else:
        cache.clear()


def day_slots(doctor, department, *, count=3, days=3, capacity=1):
    """`count` slots of one doctor on one clinic day, 20 minutes apart, the first at 09:00 local."""
    tz = department.clinic.tz
    day = timezone.localdate(timezone=tz) + dt.timedelta(days=days)
    first = dt.datetime.combine(day, dt.time(9), tzinfo=tz)
    return [
        SlotFactory(
            doctor=doctor,
            department=department,
            start=first + dt.timedelta(minutes=20 * n),
            capacity=capacity,
        )
        for n in range(count)
    ]


def listing(client, slot, **extra):
    params = {"doctor": slot.doctor_id, "date_from": slot.date, "date_to": slot.date, "available": "true"}
    response = client.get(SLOTS, {**params, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def ids(body) -> list[int]:
    return [row["id"] for row in body["results"]]


@pytest.mark.django_db
def test_it_answers_a_repeated_listing_with_the_token_check_alone(api_as, patient, doctor, department):
    slots = day_slots(doctor, department)
    client = api_as(patient.user)
    first = listing(client, slots[0])

    with CaptureQueriesContext(connection) as queries:
        again = listing(client, slots[0])

    assert again == first
    assert ids(again) == [s.pk for s in slots]
    # The token (with its user) is read on every request: revocation and deactivation stay immediate.
    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert "core_apitoken" in queries.captured_queries[0]["sql"]


@pytest.mark.django_db
def test_a_cached_answer_is_the_same_as_the_uncached_one_for_staff(
    api_as, patient, staff_user, doctor, department
):
    slots = day_slots(doctor, department)
    listing(api_as(patient.user), slots[0])

    cached = listing(api_as(patient.user), slots[0])
    staff = listing(api_as(staff_user), slots[0])  # staff are never answered from the cache

    assert cached == staff


@pytest.mark.django_db(transaction=True)
def test_the_next_listing_shows_each_booking_cancellation_and_move(
    api_as, patient, other_patient, staff_user, doctor, department
):
    slots = day_slots(doctor, department)
    client = api_as(patient.user)
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]

    booked = appointment_book(actor=staff_user, patient=other_patient, slot=slots[1])
    assert ids(listing(client, slots[0])) == [slots[0].pk, slots[2].pk]

    moved = appointment_reschedule(actor=staff_user, appointment=booked, slot=slots[2])
    assert ids(listing(client, slots[0])) == [slots[0].pk, slots[1].pk]

    appointment_cancel(actor=staff_user, appointment=moved, reason="")
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]


@pytest.mark.django_db(transaction=True)
def test_a_move_to_another_doctors_day_frees_the_old_one_in_both_listings(
    api_as, patient, other_patient, staff_user, doctor, colleague, department
):
    mine = day_slots(doctor, department, count=1)
    theirs = day_slots(colleague, department, count=1, days=4)
    client = api_as(patient.user)
    booked = appointment_book(actor=staff_user, patient=other_patient, slot=mine[0])
    assert ids(listing(client, mine[0])) == []
    assert ids(listing(client, theirs[0])) == [theirs[0].pk]

    appointment_reschedule(actor=staff_user, appointment=booked, slot=theirs[0])

    assert ids(listing(client, mine[0])) == [mine[0].pk]
    assert ids(listing(client, theirs[0])) == []


@pytest.mark.django_db(transaction=True)
def test_a_department_and_a_clinic_listing_follow_bookings_too(
    api_as, patient, other_patient, staff_user, doctor, department, clinic
):
    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    by_department = {"department": department.pk, "available": "true"}
    by_clinic = {"clinic": clinic.pk, "available": "true"}
    assert ids(client.get(SLOTS, by_department).json()) == [s.pk for s in slots]
    assert ids(client.get(SLOTS, by_clinic).json()) == [s.pk for s in slots]

    appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])

    assert ids(client.get(SLOTS, by_department).json()) == [slots[1].pk]
    assert ids(client.get(SLOTS, by_clinic).json()) == [slots[1].pk]


@pytest.mark.django_db(transaction=True)
def test_a_week_listing_hears_of_a_booking_on_any_of_its_days(
    api_as, patient, other_patient, staff_user, doctor, department
):
    monday = day_slots(doctor, department, count=1, days=3)[0]
    friday = day_slots(doctor, department, count=1, days=7)[0]
    client = api_as(patient.user)
    week = {"doctor": doctor.pk, "date_from": monday.date, "date_to": friday.date, "available": "true"}
    assert ids(client.get(SLOTS, week).json()) == [monday.pk, friday.pk]

    appointment_book(actor=staff_user, patient=other_patient, slot=friday)

    assert ids(client.get(SLOTS, week).json()) == [monday.pk]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_booking_leaves_the_listing_as_it_was(
    api_as, patient, other_patient, staff_user, doctor, department
):
    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    before = listing(client, slots[0])

    def book_then_fail():
        with transaction.atomic():
            appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])
            # Read inside the booking's transaction: what this connection sees is not committed.
            assert ids(listing(client, slots[0])) == [slots[1].pk]
            raise RuntimeError("the request failed after booking")

    with pytest.raises(RuntimeError):
        book_then_fail()

    # No phantom booking (the uncommitted read was not kept), and the seat is still free.
    assert Slot.objects.get(pk=slots[0].pk).booked_count == 0
    assert listing(client, slots[0]) == before
    appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])
    assert ids(listing(client, slots[0])) == [slots[1].pk]


@pytest.mark.django_db(transaction=True)
def test_slot_changes_from_the_admin_and_from_generation_show_at_once(api_as, patient, doctor, department):
    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]

    # The admin saves the model: closing one slot.
    slots[1].is_active = False
    slots[1].save(update_fields=["is_active"])
    assert ids(listing(client, slots[0])) == [slots[0].pk]

    # Generation writes in bulk (no signals): the doctor has no availability rules, so it closes them.
    report = slots_generate(doctors=type(doctor).objects.filter(pk=doctor.pk))
    assert report.deactivated == 1
    assert ids(listing(client, slots[0])) == []


@pytest.mark.django_db(transaction=True)
def test_the_catalog_around_the_slots_shows_at_once(api_as, patient, doctor, department):
    slots = day_slots(doctor, department, count=1)
    client = api_as(patient.user)
    assert listing(client, slots[0])["results"][0]["doctor"]["name"] == doctor.display_name

    doctor.user.last_name = "Renamed"
    doctor.user.save(update_fields=["last_name"])
    assert listing(client, slots[0])["results"][0]["doctor"]["name"].endswith("Renamed")

    doctor.approval_status = ApprovalStatus.SUSPENDED
    doctor.save(update_fields=["approval_status"])
    assert ids(listing(client, slots[0])) == []


@pytest.mark.django_db
def test_a_revoked_token_is_refused_though_its_listing_is_cached(api, patient, doctor, department):
    from opd.core.models import ApiToken

    slots = day_slots(doctor, department, count=1)
    key = token_for(patient.user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    listing(api, slots[0])

    token_revoke(actor=patient.user, token=ApiToken.objects.get(user=patient.user))

    assert api.get(SLOTS, {"doctor": doctor.pk, "date_from": slots[0].date}).status_code == 401
    response = api.get(
        SLOTS,
        {"doctor": doctor.pk, "date_from": slots[0].date, "date_to": slots[0].date, "available": "true"},
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_a_deactivated_patient_and_another_organizations_patient_get_nothing_cached(
    api_as, patient, other_org, doctor, department
):
    slots = day_slots(doctor, department, count=1)
    client = api_as(patient.user)
    stranger = api_as(UserFactory(role=Role.PATIENT, organization=other_org))
    assert ids(listing(client, slots[0])) == [slots[0].pk]

    # The same query string from another organization is another scope: nothing of this one.
    assert ids(listing(stranger, slots[0])) == []

    patient.user.is_active = False
    patient.user.save(update_fields=["is_active"])
    response = client.get(
        SLOTS,
        {"doctor": doctor.pk, "date_from": slots[0].date, "date_to": slots[0].date, "available": "true"},
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_a_listing_expires_when_its_first_slot_starts(api_as, patient, doctor, department):
    from django.core.cache import cache

    from scheduling import listing_cache

    soon = timezone.now() + dt.timedelta(seconds=90)
    slot = SlotFactory(doctor=doctor, department=department, start=soon)

    listing(api_as(patient.user), slot)

    redis = raw_redis()
    entries = list(redis.scan_iter(cache.make_key(f"{listing_cache.prefix()}entry:*")))
    assert len(entries) == 1
    # Kept no longer than until the slot starts (then it must leave the listing), not MAX_SECONDS.
    assert 0 < redis.pttl(entries[0]) <= 90_000


@pytest.mark.django_db(transaction=True)
def test_versions_leave_redis_after_a_day_and_an_expired_one_is_never_stale(
    api_as, patient, other_patient, staff_user, doctor, department
):
    from django.core.cache import cache

    from opd.core.versioned_cache import VERSION_SECONDS
    from scheduling import listing_cache

    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]
    appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])  # a bump sets them again

    redis = raw_redis()
    versions = [
        key for key in redis.scan_iter(cache.make_key(f"{listing_cache.prefix()}*")) if b":entry:" not in key
    ]
    assert versions  # the catalog's, the doctor-day's and the clinic's
    for key in versions:
        assert 0 < redis.ttl(key) <= VERSION_SECONDS
    assert ids(listing(client, slots[0])) == [slots[1].pk]  # and kept under those versions
    # A change no version hears of (a raw update no door makes), then the doctor-day's version expires
    # (a day later, or evicted): the next listing reads the database under a new version.
    Slot.objects.filter(pk=slots[1].pk).update(booked_count=1)
    assert ids(listing(client, slots[0])) == [slots[1].pk]
    redis.delete(
        cache.make_key(f"{listing_cache.prefix()}{listing_cache.doctor_day_key(doctor.pk, slots[0].date)}")
    )
    assert ids(listing(client, slots[0])) == []


@pytest.mark.django_db
def test_bad_parameters_still_answer_400_naming_the_parameter(api_as, patient, doctor, department):
    client = api_as(patient.user)
    response = client.get(SLOTS, {"doctor": "abc", "date_from": "2030-01-01", "date_to": "2030-01-01"})
    assert response.status_code == 400
    assert "doctor" in response.json()["error"]["fields"]
    response = client.get(SLOTS, {"doctor": doctor.pk, "date_from": "2030-01-01", "available": "maybe"})
    assert response.status_code == 400
    assert "available" in response.json()["error"]["fields"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_another_process_sees_the_next_change_and_this_one_sees_its(
    api_as, patient, other_patient, staff_user, doctor, department
):
    """A server process (uvicorn on the test database and Redis) and this process each answer listings
    from the shared cache; a booking here shows in the server's next answer, a cancellation there in
    this process's next one."""
    import urllib.request

    slots = day_slots(doctor, department, count=2)
    patient_token, staff_token = token_for(patient.user), token_for(staff_user)
    query = f"?doctor={doctor.pk}&date_from={slots[0].date}&date_to={slots[0].date}&available=true"
    client = api_as(patient.user)

    def server_ids(server) -> list[int]:
        request = urllib.request.Request(  # noqa: S310 (a loopback test server)
            f"{server.url}{SLOTS}{query}", headers={"Authorization": f"Token {patient_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return [row["id"] for row in json.loads(response.read())["results"]]

    with asgi_server("opd-test-slots-listing") as server:
        everything = [s.pk for s in slots]
        assert server_ids(server) == everything
        assert server_ids(server) == everything  # now from the cache
        assert ids(listing(client, slots[0])) == everything

        booked = appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])
        assert server_ids(server) == [slots[1].pk]
        assert ids(listing(client, slots[0])) == [slots[1].pk]

        status, body = post(f"{server.url}/api/v1/appointments/{booked.pk}/cancel/", token=staff_token)
        assert status == 200, body
        assert ids(listing(client, slots[0])) == everything
        assert server_ids(server) == everything

        # A booking made by another patient through the server disappears here at once too.
        someone = PatientFactory(organization=patient.organization)
        body = json.dumps({"slot": slots[1].pk, "patient": someone.pk}).encode()
        status, answer = post(f"{server.url}/api/v1/appointments/", token=staff_token, body=body)
        assert status == 201, answer
        assert ids(listing(client, slots[0])) == [slots[0].pk]


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_local_memory_cache_is_as_fresh(
    api_as, patient, other_patient, staff_user, doctor, department, settings
):
    """`make run` on a bare machine has the local-memory cache: the same versions, without the script."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]
    with CaptureQueriesContext(connection) as queries:
        assert ids(listing(client, slots[0])) == [s.pk for s in slots]
    assert len(queries) == 1  # the token; the rows came from the cache

    booked = appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])
    assert ids(listing(client, slots[0])) == [slots[1].pk]
    appointment_cancel(actor=staff_user, appointment=booked, reason="")
    assert ids(listing(client, slots[0])) == [s.pk for s in slots]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_readers_racing_each_booking_never_leave_an_old_listing_behind(
    api_as, patient, other_patient, staff_user, doctor, department
):
    """Three threads list the day without pause while this one books its slots one by one: a reader
    that read the rows just before a booking committed stores them under the version from before the
    bump, so the listing made right after each booking returns never shows the booked slot."""
    import threading

    from django.db import connections

    slots = day_slots(doctor, department, count=12)
    token = token_for(patient.user)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader():
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            while not stop.is_set():
                listing(client, slots[0])
                reads[0] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    client = api_as(patient.user)
    try:
        for n, slot in enumerate(slots[:-1]):
            appointment_book(
                actor=staff_user, patient=PatientFactory(organization=patient.organization), slot=slot
            )
            assert ids(listing(client, slots[0])) == [s.pk for s in slots[n + 1 :]]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    assert reads[0] > len(slots)  # the readers did race the bookings


# With the token check cached too (as in production), a patient's repeated listing reads both caches in
# one round trip: the token's entry names the organization whose listing is read with it.


@pytest.fixture
def token_cache_on(settings):
    from django.core.cache import cache

    from opd.core import token_cache

    settings.OPD_API_TOKEN_CACHE_SECONDS = 60
    cache.delete_pattern(f"{token_cache._versions.prefix()}*")
    assert token_cache.enabled()


@pytest.fixture
def redis_round_trips(monkeypatch):
    """How many commands (or pipelines, or scripts) this process sends to Redis while it runs."""
    from redis.connection import AbstractConnection

    sent = []
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


LISTINGS = {
    "doctor-day": lambda slot: {
        "doctor": slot.doctor_id,
        "date_from": slot.date,
        "date_to": slot.date,
        "available": "true",
    },
    "department": lambda slot: {"department": slot.department_id, "available": "true"},
    "clinic": lambda slot: {"clinic": slot.clinic_id, "available": "true"},
}


@pytest.mark.parametrize("kind", LISTINGS)
@pytest.mark.django_db(transaction=True)
def test_a_repeated_listing_is_one_round_trip_and_no_statement(
    kind, token_cache_on, redis_round_trips, api_as, patient, doctor, department
):
    slots = day_slots(doctor, department)
    client = api_as(patient.user)
    params = LISTINGS[kind](slots[0])
    first = client.get(SLOTS, params)
    client.get(SLOTS, params)  # the token's check is cached now; the listing was already
    redis_round_trips.clear()

    with CaptureQueriesContext(connection) as queries:
        again = client.get(SLOTS, params)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert ids(again.json()) == [s.pk for s in slots]
    assert queries.captured_queries == []
    assert len(redis_round_trips) == 1


@pytest.mark.django_db(transaction=True)
def test_with_both_cached_a_revoked_token_and_a_deactivated_patient_are_refused(
    token_cache_on, api, api_as, patient, doctor, department
):
    from opd.core.models import ApiToken

    slots = day_slots(doctor, department, count=1)
    key = token_for(patient.user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    for _ in range(3):
        assert ids(listing(api, slots[0])) == [slots[0].pk]

    token_revoke(actor=patient.user, token=ApiToken.objects.get(user=patient.user))
    assert api.get(SLOTS, LISTINGS["doctor-day"](slots[0])).status_code == 401

    other = api_as(patient.user)
    for _ in range(3):
        assert ids(listing(other, slots[0])) == [slots[0].pk]
    patient.user.is_active = False
    patient.user.save(update_fields=["is_active"])
    assert other.get(SLOTS, LISTINGS["doctor-day"](slots[0])).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_with_both_cached_another_organization_never_gets_this_ones_listing(
    token_cache_on, api_as, patient, other_org, doctor, department
):
    slots = day_slots(doctor, department, count=2)
    mine = api_as(patient.user)
    stranger = api_as(UserFactory(role=Role.PATIENT, organization=other_org))
    for _ in range(3):
        assert ids(listing(mine, slots[0])) == [s.pk for s in slots]
        assert ids(listing(stranger, slots[0])) == []


@pytest.mark.django_db(transaction=True)
def test_with_both_cached_staff_are_still_answered_from_the_database(
    token_cache_on, api_as, patient, staff_user, doctor, department
):
    slots = day_slots(doctor, department, count=2)
    patient_client, staff_client = api_as(patient.user), api_as(staff_user)
    for _ in range(2):
        assert ids(listing(patient_client, slots[0])) == [s.pk for s in slots]
        assert ids(listing(staff_client, slots[0])) == [s.pk for s in slots]

    # A change no version hears of (a raw update, which no door of the product makes): the patient's
    # cached answer keeps the slot, the staff member's answer, read from the database, does not.
    Slot.objects.filter(pk=slots[1].pk).update(booked_count=1)

    assert ids(listing(patient_client, slots[0])) == [s.pk for s in slots]
    assert ids(listing(staff_client, slots[0])) == [slots[0].pk]


@pytest.mark.parametrize("kind", LISTINGS)
@pytest.mark.django_db(transaction=True)
def test_with_both_cached_the_next_listing_shows_each_booking_and_cancellation(
    kind, token_cache_on, api_as, patient, other_patient, staff_user, doctor, department
):
    slots = day_slots(doctor, department, count=2)
    client = api_as(patient.user)
    params = LISTINGS[kind](slots[0])
    for _ in range(2):
        assert ids(client.get(SLOTS, params).json()) == [s.pk for s in slots]

    booked = appointment_book(actor=staff_user, patient=other_patient, slot=slots[0])
    assert ids(client.get(SLOTS, params).json()) == [slots[1].pk]
    assert ids(client.get(SLOTS, params).json()) == [slots[1].pk]

    appointment_cancel(actor=staff_user, appointment=booked, reason="")
    assert ids(client.get(SLOTS, params).json()) == [s.pk for s in slots]


# The child's change: a move (it dies right after the commit, before the on-commit hooks, the listing's
# bump among them).
MOVE = """
from opd.core.models import User
from scheduling.models import Appointment, Slot
from scheduling.services import appointment_reschedule

actor, appointment, slot = (int(arg) for arg in sys.argv[1:4])
appointment_reschedule(
    actor=User.objects.get(pk=actor), appointment=Appointment.objects.get(pk=appointment), slot=Slot.objects.get(pk=slot)
)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_move_whose_process_died_after_its_commit_shows_once_the_relay_delivers_it(
    api_as, patient, other_patient, staff_user, doctor, colleague, department
):
    from opd.core.services.outbox import outbox_relay_once
    from tests.crash import run_killed_after_commit
    from tests.notifications.worker import process_env

    mine = day_slots(doctor, department, count=1)[0]
    theirs = day_slots(colleague, department, count=1, days=4)[0]
    booked = appointment_book(actor=staff_user, patient=other_patient, slot=mine)
    client = api_as(patient.user)
    for _ in range(2):  # the second from the cache
        assert ids(listing(client, mine)) == []
        assert ids(listing(client, theirs)) == [theirs.pk]

    run_killed_after_commit(MOVE, [staff_user.pk, booked.pk, theirs.pk], process_env({}))
    booked.refresh_from_db()
    assert booked.slot_id == theirs.pk  # the move committed
    # ... and neither doctor's day heard of it.
    assert ids(listing(client, mine)) == []
    assert ids(listing(client, theirs)) == [theirs.pk]

    report = outbox_relay_once(now=timezone.now() + dt.timedelta(seconds=3600))

    assert report.delivered >= 1
    assert ids(listing(client, mine)) == [mine.pk]
    assert ids(listing(client, theirs)) == []
