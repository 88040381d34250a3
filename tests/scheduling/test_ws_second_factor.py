"""A queue socket needs the second factor the person's sign-in needs: a session that has not given it, or
an API token issued without it, opens nothing (closed 4401 as signed out); one that has, opens."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from devtools.authenticator import code_for
from opd.core.services import second_factor_enrolment_begin, second_factor_enrolment_confirm, token_issue

from .queue_helpers import isolate_channel_layer
from .test_ws_queue import close_code, opened, run, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("daytime")]


@pytest.fixture(autouse=True)
def _setup(settings):
    isolate_channel_layer(settings)
    settings.OPD_REQUIRE_SECOND_FACTOR = True


def session_cookie(user, *, verified_with=None) -> str:
    client = Client()
    client.force_login(user)
    if verified_with is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = verified_with.persistent_id
        session.save()
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_a_session_without_the_second_factor_opens_no_socket(doctor):
    device = second_factor_enrolment_begin(user=doctor.user)
    second_factor_enrolment_confirm(user=doctor.user, device=device, code=code_for(device).code)
    path = f"/ws/queue/doctor/{doctor.pk}/"
    password_only, verified = session_cookie(doctor.user), session_cookie(doctor.user, verified_with=device)

    async def scenario():
        assert await close_code(socket(path, cookie=password_only)) == 4401
        await opened(socket(path, cookie=verified))

    run(scenario)


def test_a_token_needs_the_second_factor_too(doctor):
    path = f"/ws/queue/doctor/{doctor.pk}/"
    _, without = token_issue(user=doctor.user, name="no factor")
    _, with_factor = token_issue(user=doctor.user, name="factor", second_factor=True)

    async def scenario():
        assert await close_code(socket(path, subprotocols=["opd-token", without])) == 4401
        await opened(socket(path, subprotocols=["opd-token", with_factor]))

    run(scenario)
