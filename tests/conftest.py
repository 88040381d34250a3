"""Personas every test can ask for (one organization with two clinics, and a second organization), and
the helpers every test shares: `assert_error` for the API's error answers, `wait_until` for conditions
another process or thread brings about, `future_slot`, `book` and `committed`."""

from __future__ import annotations

import datetime as dt
import itertools
import pathlib
import time
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db.backends.mysql.operations import DatabaseOperations as MySQLOperations
from django.utils import timezone
from rest_framework.test import APIClient

from opd.core import outbox
from opd.core.models import Role
from scheduling.services import appointment_book

from .factories import (
    ClinicFactory,
    DepartmentFactory,
    DoctorFactory,
    OrganizationFactory,
    PatientFactory,
    SlotFactory,
    UserFactory,
)

# The audit tables refuse DELETE (triggers, opd.core migration 0008), and Django's flush after a
# transactional test empties tables with DELETE: empty those two with TRUNCATE, which fires no trigger
# (as a DBA wiping a test database would). The application itself has no such door.
APPEND_ONLY_TABLES = ("core_auditevent", "core_auditseal")
_sql_flush = MySQLOperations.sql_flush


def _sql_flush_truncating_audit(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    statements = _sql_flush(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    audit = {table: self.quote_name(table) for table in APPEND_ONLY_TABLES}

    def truncating(statement: str) -> str:
        for quoted in audit.values():
            if "DELETE" in statement and statement.rstrip(";").endswith(quoted):
                return f"TRUNCATE {quoted};"
        return statement

    return [truncating(statement) for statement in statements]


MySQLOperations.sql_flush = _sql_flush_truncating_audit

# ClinicFactory's time zone, and so `clinic`'s (`other_clinic` is in Paris, an hour ahead).
CLINIC_ZONE = zoneinfo.ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def _forget_outbox_marks():
    """Ids this process delivered in a test are not marked after it, nor are its events still queued for the
    sender thread sent: that test's rows are gone."""
    yield
    outbox.forget_marks()
    outbox.forget_queued()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters (opd.core.api.throttling) are in the real cache, outside the test's
    transaction: each test starts with none, so one test's requests never throttle the next."""
    _clear_rate_limits()


def _clear_rate_limits() -> None:
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("throttle_*")
    else:
        cache.clear()


@pytest.fixture
def daytime():
    """Pins the clock at 10:00 today in the clinics' zone, ticking on from there: a queue of bookings "in
    N minutes" stays inside the clinic's today whatever the hour the suite runs. It moves this process's
    clock only (threads included); servers and workers in other processes keep the real one."""
    today = dt.datetime.now(CLINIC_ZONE).date()
    with time_machine.travel(dt.datetime.combine(today, dt.time(10), tzinfo=CLINIC_ZONE), tick=True):
        yield


@pytest.fixture
def org():
    return OrganizationFactory(name="Riverside Health", slug="riverside")


@pytest.fixture
def clinic(org):
    return ClinicFactory(organization=org, name="Riverside Central", code="central")


@pytest.fixture
def other_clinic(org):
    return ClinicFactory(organization=org, name="Riverside North", code="north", time_zone="Europe/Paris")


@pytest.fixture
def department(clinic):
    return DepartmentFactory(clinic=clinic, name="General medicine", code="gen")


@pytest.fixture
def other_clinic_department(other_clinic):
    return DepartmentFactory(clinic=other_clinic, name="Cardiology", code="cardio")


@pytest.fixture
def other_org():
    return OrganizationFactory(name="Hillside Care", slug="hillside")


@pytest.fixture
def other_org_clinic(other_org):
    return ClinicFactory(organization=other_org, name="Hillside Clinic", code="hill")


@pytest.fixture
def other_org_department(other_org_clinic):
    return DepartmentFactory(clinic=other_org_clinic, name="Family medicine", code="fam")


@pytest.fixture
def superuser(db):
    """The platform's operator: a superuser of no organization."""
    return UserFactory(username="root", role=Role.ADMIN, organization=None, is_staff=True, is_superuser=True)


@pytest.fixture
def admin_user(org):
    return UserFactory(username="admin", role=Role.ADMIN, organization=org, is_staff=True)


@pytest.fixture
def staff_user(org, clinic):
    return UserFactory(
        username="reception", role=Role.STAFF, organization=org, is_staff=True, clinics=[clinic]
    )


@pytest.fixture
def nurse(org, clinic):
    """A staff member who works as a nurse at the clinic (Membership.is_nurse), granted as an admin would."""
    from opd.core.models import Membership
    from opd.core.services import membership_set_nurse

    user = UserFactory(username="nurse", role=Role.STAFF, organization=org, is_staff=True, clinics=[clinic])
    membership_set_nurse(
        actor=None, membership=Membership.objects.get(user=user, clinic=clinic), is_nurse=True
    )
    return user


@pytest.fixture
def other_clinic_staff(org, other_clinic):
    return UserFactory(
        username="north-reception", role=Role.STAFF, organization=org, is_staff=True, clinics=[other_clinic]
    )


@pytest.fixture
def doctor(org, department):
    return DoctorFactory(user__username="dr-house", user__organization=org, departments=[department])


@pytest.fixture
def colleague(org, department):
    """Another doctor at the same clinic and department."""
    return DoctorFactory(user__username="dr-colleague", user__organization=org, departments=[department])


@pytest.fixture
def other_clinic_doctor(org, other_clinic_department):
    """A doctor of the same organization who works only at the other clinic."""
    return DoctorFactory(
        user__username="dr-north", user__organization=org, departments=[other_clinic_department]
    )


@pytest.fixture
def other_org_user(other_org):
    """The other organization's administrator: sees everything of theirs and nothing of ours."""
    return UserFactory(username="hillside-admin", role=Role.ADMIN, organization=other_org, is_staff=True)


@pytest.fixture
def other_org_doctor(other_org, other_org_department):
    return DoctorFactory(
        user__username="dr-other", user__organization=other_org, departments=[other_org_department]
    )


@pytest.fixture
def patient(org):
    user = UserFactory(username="pat", role=Role.PATIENT, organization=org)
    return PatientFactory(organization=org, user=user, first_name="Ada", last_name="Lovelace")


@pytest.fixture
def other_patient(org):
    user = UserFactory(username="other-pat", role=Role.PATIENT, organization=org)
    return PatientFactory(organization=org, user=user, first_name="Grace", last_name="Hopper")


@pytest.fixture
def other_org_patient(other_org):
    return PatientFactory(organization=other_org, first_name="Alan", last_name="Turing")


@pytest.fixture
def slot(doctor, department):
    return SlotFactory(doctor=doctor, department=department, capacity=2)


@pytest.fixture
def api():
    return APIClient()


def token_for(user) -> str:
    """A new API token key for `user`, issued as a sign-in would (live for OPD_TOKEN_TTL_HOURS)."""
    from opd.core.services import token_issue

    return token_issue(user=user, name="tests")[1]


@pytest.fixture
def api_as(api):
    """api_as(user) -> an API client authenticated with a new token of that user."""

    def login(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return login


_slot_offsets = itertools.count()


def future_slot(doctor, department, *, days: float = 3, **kwargs):
    """A slot about `days` ahead; each call's slot starts 20 minutes after the previous call's."""
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=days, minutes=20 * next(_slot_offsets))
    return SlotFactory(doctor=doctor, department=department, start=start, capacity=4, **kwargs)


@pytest.fixture
def book(django_capture_on_commit_callbacks, staff_user):
    """book(patient, slot) -> appointment, with the booking's events (and the sends they queue) run."""

    def run(patient, slot, actor=None):
        with django_capture_on_commit_callbacks(execute=True):
            return appointment_book(actor=actor or staff_user, patient=patient, slot=slot)

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """with committed(): ... runs what the block registers with on_commit, as a real commit would."""

    def context():
        return django_capture_on_commit_callbacks(execute=True)

    return context


# A reason to open a record without a care relationship (break the glass, consultations.access).
BREAK_GLASS = "Covering the clinic for a colleague today"


def assert_error(
    response,
    status: int,
    code: str | None = None,
    fields: Iterable[str] | None = None,
    *,
    field: str | None = None,
) -> dict[str, Any]:
    """Asserts an API error answer and returns its error: the status, the one shape
    {"error": {"code", "message", "fields"}} with a message, and when given the code, exactly these
    `fields`, or at least this `field`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str), error
    assert error["code"], error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["fields"], dict), error
    if code is not None:
        assert error["code"] == code, error
    if fields is not None:
        assert set(error["fields"]) == set(fields), error
    if field is not None:
        assert field in error["fields"], error
    return error


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str | Callable[[], str] = "condition",
) -> Any:
    """Polls `condition` until it returns something truthy, and returns that; fails after `timeout`
    seconds, naming `what` (a callable is asked only then, e.g. for a worker's log). The condition may
    raise to fail at once (a process it waits for exited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
            )
        time.sleep(interval)


BROWSER_FIXTURES = {"browser", "page", "narrow_page"}


def pytest_collection_modifyitems(config, items):
    """A test that drives Chromium must say so (`browser` marker, and `slow`: a real process), so that
    `make test-fast` leaves it out; an unmarked one stops the run here rather than slowing the loop."""
    unmarked = []
    for item in items:
        module = getattr(item, "module", None)
        source = pathlib.Path(module.__file__).read_text() if module and module.__file__ else ""
        drives_chromium = BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())) or "playwright" in source
        if drives_chromium and not (item.get_closest_marker("browser") and item.get_closest_marker("slow")):
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError("Mark browser tests `browser` and `slow`: " + ", ".join(unmarked))


@pytest.fixture
def tasks_queued_not_run():
    """Celery tasks go to the broker (a queue of this test's own, emptied afterwards) instead of running in
    the test process, as in production: so a query count is the request's, not its background work's."""
    import uuid

    from opd.celery import app as celery_app

    queue = f"opd-test-unrun-{uuid.uuid4().hex}"
    names = ("task_always_eager", "task_default_queue")
    previous = {name: celery_app.conf[name] for name in names}
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    yield queue
    celery_app.conf.update(previous)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
