"""Building a live queue for tests: today's checked-in patients.

A clinic's queue is its local today. Tests that book "in 20 minutes" would cross midnight in the evening,
so they pin the clock at mid-morning with the `daytime` fixture (tests/conftest.py, time-machine). Tests
whose server runs in another process cannot move that process's clock: `move_to_daytime_zone()` moves
their clinic to a time zone where it is between 07:00 and 17:00 right now instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
import zoneinfo

from django.utils import timezone

from opd.core.models import Clinic
from scheduling.models import Appointment, Slot
from scheduling.services import appointment_book, appointment_check_in, appointment_set_priority
from tests.factories import PatientFactory, SlotFactory

# Every three hours round the world: one of them is always in working hours.
ZONES = (
    "Europe/London",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Pacific/Guadalcanal",
    "Pacific/Kiritimati",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Atlantic/Azores",
)
_minutes = itertools.count(5)


def daytime_zone() -> str:
    now = timezone.now()
    for name in ZONES:
        if 7 <= now.astimezone(zoneinfo.ZoneInfo(name)).hour < 17:
            return name
    raise AssertionError("no time zone in working hours")


def move_to_daytime_zone(*clinics: Clinic) -> None:
    zone = daytime_zone()
    for clinic in clinics:
        clinic.time_zone = zone
        clinic.save(update_fields=["time_zone"])


def booked(actor, doctor, department, *, minutes: int | None = None, patient=None) -> Appointment:
    """A booking today, `minutes` from now (each call a new slot by default)."""
    minutes = minutes if minutes is not None else next(_minutes) % 55 + 3
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=minutes)
    slot = Slot.objects.filter(doctor=doctor, start=start).first() or SlotFactory(
        doctor=doctor, department=department, capacity=4, start=start
    )
    patient = patient or PatientFactory(organization=department.clinic.organization)
    return appointment_book(actor=actor, patient=patient, slot=slot)


def waiting(
    actor, doctor, department, *, minutes: int | None = None, priority: str = "", **kwargs
) -> Appointment:
    """A patient checked in now (with a token), waiting for `doctor`."""
    appt = appointment_check_in(
        actor=actor, appointment=booked(actor, doctor, department, minutes=minutes, **kwargs)
    )
    if priority:
        appt = appointment_set_priority(actor=actor, appointment=appt, is_priority=True, reason=priority)
    return appt


def isolate_channel_layer(settings) -> str:
    """Use the Redis channel layer with a prefix of this test's own, so parallel test runs (and other
    suites sharing the Redis server) never hear each other's groups. Returns the prefix."""
    prefix = f"opd-test-{uuid.uuid4().hex[:12]}"
    assert settings.REDIS_URL, "websocket tests run on the Redis channel layer"
    layer = settings.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # The project's configuration (hosts with their timeouts, capacity), with the test's prefix.
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": prefix}}}
    return prefix


def session_cookie(user) -> str:
    """A signed-in session for `user`, as a Cookie header value."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def websocket_communicator_class():
    """channels' WebsocketCommunicator. Its package's __init__ also imports the live-server test case,
    which needs daphne (a server we do not use: uvicorn serves our websockets); without daphne, load the
    communicator's own module without that __init__ (once: a second caller finds it loaded)."""
    import sys

    loaded = sys.modules.get("channels.testing.websocket")
    if loaded is not None:
        return loaded.WebsocketCommunicator
    try:
        from channels.testing import WebsocketCommunicator
    except ModuleNotFoundError as exc:
        if exc.name != "daphne":
            raise
        import types
        from pathlib import Path

        import channels

        package = types.ModuleType("channels.testing")
        package.__path__ = [str(Path(channels.__file__).parent / "testing")]
        sys.modules["channels.testing"] = package
        from channels.testing.websocket import WebsocketCommunicator
    return WebsocketCommunicator


def run_scenario(scenario):
    """Run an async test scenario to its end, as async_to_sync does, and return what it returns; then end
    every task it left (a consumer's channel-layer receive, a refused socket's denier) while the loop
    still runs, cancelling again until each has ended.

    Once in a while a cancellation is lost inside redis-py's blocking pop (a known race of blocking
    commands under asyncio): a task cancelled once, as asyncio.run does with what is left at its close,
    then never ends and the test hangs for ever. A second cancellation ends it."""
    from asgiref.sync import async_to_sync

    async def settled():
        try:
            return await scenario()
        finally:
            me = asyncio.current_task()
            for _ in range(100):
                left = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
                if not left:
                    break
                for task in left:
                    task.cancel()
                await asyncio.wait(left, timeout=0.1)

    return async_to_sync(settled)()
