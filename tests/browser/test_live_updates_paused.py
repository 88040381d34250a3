"""Redis stops under the doctor's dashboard, in Debian's Chromium: the page says live updates are paused,
the work goes on (check-in through the API, the page served afresh), and when Redis is back the page
catches up by itself, with no reload.

The server (uvicorn: pages, API, websockets) runs on a Redis of this test's own (tests/redis_rig.py, on a
port given to these tests) for its cache, channel layer and broker, so stopping it touches no one else.
"""

from __future__ import annotations

import json
import uuid

import pytest

from scheduling.models import Appointment
from tests.browser.conftest import sign_in
from tests.conftest import future_slot, token_for
from tests.factories import PatientFactory
from tests.redis_rig import redis_server
from tests.scheduling.asgi_server import asgi_server, post
from tests.scheduling.queue_helpers import booked, move_to_daytime_zone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

REDIS_PORT = 6416
LIVE = '[data-live-status][data-state="live"]'
PAUSED = '[data-live-status][data-state="offline"]'


def test_the_dashboard_says_live_updates_paused_without_redis_and_resyncs_when_it_returns(
    page, staff_user, doctor, department, clinic
):
    move_to_daytime_zone(clinic)  # the server runs on the real clock
    arriving = booked(staff_user, doctor, department, minutes=30)
    reception = token_for(staff_user)
    environ = {"REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0"}

    with (
        redis_server(REDIS_PORT) as redis,
        asgi_server(f"opd-test-{uuid.uuid4().hex[:8]}", environ=environ) as server,
    ):
        dashboard = f"{server.url}/queue/dashboard/"
        sign_in(page, server.url, doctor.user)
        page.goto(dashboard)
        page.wait_for_selector(LIVE)
        assert page.locator(f"#appointment-{arriving.pk}").count() == 0  # booked, not yet arrived

        redis.stop()
        page.wait_for_selector(PAUSED, timeout=15_000)
        assert "Live updates paused" in page.locator("[data-live-status]").inner_text()

        # Reception checks the patient in and books another meanwhile: the API works without Redis (the
        # booking's rate limit goes uncounted, its messages are planned in the request).
        status, body = post(f"{server.url}/api/v1/appointments/{arriving.pk}/check-in/", token=reception)
        assert status == 200, body
        slot, patient = future_slot(doctor, department), PatientFactory(organization=clinic.organization)
        status, body = post(
            f"{server.url}/api/v1/appointments/",
            token=reception,
            body=json.dumps({"slot": slot.pk, "patient": patient.pk}).encode(),
        )
        assert status == 201, body
        assert Appointment.objects.filter(slot=slot, patient=patient).exists()
        # A dashboard opened now is served (from the database) and says at once that it is not live:
        # the server answers its socket "paused" and closes it (1013) instead of a snapshot that would go
        # stale without telling anyone.
        fresh = page.context.new_page()
        fresh.goto(dashboard)
        fresh.locator(f"#appointment-{arriving.pk}").wait_for(state="visible")
        fresh.wait_for_selector(PAUSED, timeout=15_000)
        assert "Live updates paused" in fresh.locator("[data-live-status]").inner_text()
        assert page.locator(f"#appointment-{arriving.pk}").count() == 0  # the first page missed it

        redis.start()
        # The first page reconnects by itself; the snapshot's newer version refreshes what it missed.
        page.wait_for_selector(LIVE, timeout=40_000)
        page.locator(f"#appointment-{arriving.pk}").wait_for(state="visible")
        fresh.wait_for_selector(LIVE, timeout=40_000)
        fresh.close()
