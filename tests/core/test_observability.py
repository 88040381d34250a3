"""Metrics at /metrics, the request id, JSON log lines: what an operator scraping and reading logs sees."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
import redis
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from opd.celery import app as celery_app
from opd.core import observability
from opd.core.tasks import purge_access_grants
from scheduling.services import appointment_book
from tests.conftest import assert_error, wait_until
from tests.factories import SlotFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-the-suite-0123456789abcdef"


@pytest.fixture
def scrape(client, settings):
    """scrape() -> {(sample name, frozenset(labels)): value}, read through GET /metrics with the token."""
    settings.METRICS_TOKEN = TOKEN

    def read() -> dict[tuple[str, frozenset], float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    return read


def statements_sent() -> int:
    """The statements this connection sent, as MariaDB counts them."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int(cursor.fetchone()[1])


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_it_hides_metrics_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_it_refuses_metrics_without_the_token(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/metrics", **extra)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"opd_http" not in response.content


def test_it_shows_a_views_latency_histogram_and_query_count(api_as, staff_user, scrape):
    labels = {"route": "api/v1/patients/", "method": "GET"}
    before = scrape()
    client = api_as(staff_user)

    statements_before = statements_sent()
    for _ in range(3):
        assert client.get("/api/v1/patients/").status_code == 200
    queries = statements_sent() - statements_before - 1  # the second SHOW STATUS counts itself
    after = scrape()

    latency = "opd_http_request_duration_seconds"
    assert value(after, f"{latency}_count", **labels) - value(before, f"{latency}_count", **labels) == 3
    assert (
        value(after, f"{latency}_bucket", le="+Inf", **labels)
        - value(before, f"{latency}_bucket", le="+Inf", **labels)
        == 3
    )
    assert value(after, f"{latency}_sum", **labels) > value(before, f"{latency}_sum", **labels)
    # The queries the three requests made, as the database saw them.
    queries_sum = "opd_http_request_db_queries_sum"
    assert queries > 0
    assert value(after, queries_sum, **labels) - value(before, queries_sum, **labels) == queries
    ok = value(after, "opd_http_responses_total", status="200", **labels)
    assert ok - value(before, "opd_http_responses_total", status="200", **labels) == 3


def test_it_counts_a_booking_conflict_by_its_code(
    api_as, staff_user, patient, other_patient, doctor, department, scrape
):
    slot = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    before = value(scrape(), "opd_api_conflicts_total", code="slot_full")

    response = api_as(staff_user).post(
        "/api/v1/appointments/", {"slot": slot.pk, "patient": patient.pk}, format="json"
    )

    assert_error(response, 409, "slot_full", {"slot"})
    after = scrape()
    assert value(after, "opd_api_conflicts_total", code="slot_full") - before == 1
    route = {"route": "api/v1/appointments/", "method": "POST"}
    assert value(after, "opd_http_responses_total", status="409", **route) >= 1


def test_an_invented_method_does_not_make_a_series_of_its_own(client, scrape):
    before = scrape()

    for method in ("BREW", "PROPFIND"):
        client.generic(method, "/healthz")

    after = scrape()
    names = {labels for name, labels in after if name == "opd_http_responses_total"}
    assert not any(("method", "BREW") in labels or ("method", "PROPFIND") in labels for labels in names)
    label = {"route": "healthz", "method": "other"}
    assert (
        sum(
            value(after, "opd_http_responses_total", status=s, **label)
            - value(before, "opd_http_responses_total", status=s, **label)
            for s in ("200", "405")
        )
        == 2
    )


def test_it_returns_the_callers_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21.0001")

    assert response["X-Request-ID"] == "lb-7f3a9c21.0001"


@pytest.mark.parametrize(
    "given", [None, "short", "has spaces in it", "x" * 129, 'quote"d-request-id', "é" * 10]
)
def test_it_replaces_a_missing_or_unsafe_request_id(client, given):
    extra = {"HTTP_X_REQUEST_ID": given} if given else {}

    response = client.get("/healthz", **extra)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.fixture
def json_log():
    """The lines a JSON handler on the root logger wrote, parsed (each must be one JSON object)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_requests_log_lines_are_json_with_its_request_id(client, json_log):
    client.get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="req-0123456789")

    lines = json_log()
    not_found = [line for line in lines if line["logger"] == "django.request"]
    assert not_found, lines
    assert not_found[0]["request_id"] == "req-0123456789"
    assert not_found[0]["level"] == "WARNING"
    assert "/api/v1/no-such-thing/" in not_found[0]["message"]
    assert set(not_found[0]) == {"time", "level", "logger", "message", "request_id"}


def test_json_lines_keep_extras_out_and_credentials_redacted(json_log):
    logger = logging.getLogger("opd.test")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception(
            "GET /ws/queue/1/?ticket=%s failed", "secret-ticket", extra={"patient_name": "Ada Smith"}
        )

    (line,) = json_log()
    assert "secret-ticket" not in json.dumps(line)
    assert "?ticket=[redacted]" in line["message"]
    assert "Ada Smith" not in json.dumps(line)
    assert "ValueError: boom" in line["exc"]
    assert line["request_id"] is None


def test_an_eager_task_logs_with_the_requests_id(json_log):
    token = observability.request_id_var.set("req-eager-000001")
    try:
        purge_access_grants.apply()
    finally:
        observability.request_id_var.reset(token)

    finished = [line for line in json_log() if line["message"].startswith("Task finished")]
    assert finished[0]["request_id"] == "req-eager-000001"
    assert finished[0]["task"] == "core.purge_access_grants"


def test_a_published_task_carries_the_request_id_in_its_headers():
    """Through the real broker (not eager): the message in Redis holds the id a worker will put back."""
    queue = f"observe-test-{uuid.uuid4().hex[:8]}"
    token = observability.request_id_var.set("req-published-01")
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        purge_access_grants.apply_async(queue=queue)
    finally:
        celery_app.conf.task_always_eager = eager
        observability.request_id_var.reset(token)
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    try:
        (raw,) = client.lrange(queue, 0, -1)
        assert json.loads(raw)["headers"][observability.TASK_HEADER] == "req-published-01"
    finally:
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


@celery_app.task(name="tests.observability_fails")
def fails() -> None:
    raise RuntimeError("the task failed")


def test_a_failing_task_is_counted(scrape):
    before = value(scrape(), "opd_celery_task_failures_total", task="tests.observability_fails")

    fails.apply()

    after = scrape()
    assert value(after, "opd_celery_task_failures_total", task="tests.observability_fails") - before == 1
    labels = {"task": "tests.observability_fails", "state": "FAILURE"}
    assert value(after, "opd_celery_task_duration_seconds_count", **labels) >= 1


@pytest.mark.slow
def test_a_real_workers_json_log_carries_the_request_id_and_its_metrics_reach_metrics(
    transactional_db, tmp_path, monkeypatch, scrape
):
    """A `celery worker` process with OPD_LOG_FORMAT=json and the node's PROMETHEUS_MULTIPROC_DIR: its
    lines parse as JSON and carry the id of the request that sent the task, and /metrics (reading the
    same folder, as gunicorn's workers do) shows the task's run time."""
    from tests.notifications.worker import Worker, purge_queue

    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    queue = f"observe-test-{uuid.uuid4().hex[:8]}"
    worker = Worker(queue=queue, folder=tmp_path / "worker", overrides={"OPD_LOG_FORMAT": "json"})
    try:
        worker.start()
        token = observability.request_id_var.set("req-to-the-worker-1")
        eager = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = False
        try:
            purge_access_grants.apply_async(queue=queue)
        finally:
            celery_app.conf.task_always_eager = eager
            observability.request_id_var.reset(token)

        def finished_line() -> dict | None:
            for raw in worker.log().splitlines():
                if raw.startswith("{") and "Task finished" in raw:
                    return json.loads(raw)
            return None

        line = wait_until(finished_line, what=f"the task's finished line:\n{worker.log()}")
        assert line["request_id"] == "req-to-the-worker-1"
        assert line["task"] == "core.purge_access_grants"
        assert line["level"] == "INFO"
        # Every line the worker logged through logging is one JSON object (the start-up banner is print()ed).
        logged = [raw for raw in worker.log().splitlines() if raw.startswith("{")]
        assert len(logged) >= 2
        assert all(json.loads(raw)["time"].endswith("+00:00") for raw in logged)

        labels = {"task": "core.purge_access_grants", "state": "SUCCESS"}
        samples = scrape()
        assert value(samples, "opd_celery_task_duration_seconds_count", **labels) == 1
        waits = "opd_celery_task_queue_wait_seconds"
        assert value(samples, f"{waits}_count", task="core.purge_access_grants") == 1
    finally:
        worker.stop()
        purge_queue(queue)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("daytime")
def test_it_counts_open_websockets_until_they_close(settings, staff_user, doctor, scrape):
    """Through the real ASGI application and the Redis channel layer: an accepted socket counts until it
    closes; one refused at the handshake never counts."""
    from asgiref.sync import sync_to_async

    from opd.asgi import application
    from tests.scheduling.queue_helpers import (
        isolate_channel_layer,
        run_scenario,
        session_cookie,
        websocket_communicator_class,
    )

    isolate_channel_layer(settings)
    communicator_class = websocket_communicator_class()
    path = f"/ws/queue/doctor/{doctor.pk}/"
    cookie = session_cookie(staff_user).encode()
    mine = communicator_class(
        application, path, headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)]
    )
    foreign = communicator_class(
        application, path, headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)]
    )

    async def open_sockets() -> float:
        return value(await sync_to_async(scrape)(), "opd_websockets_open")

    async def scenario():
        before = await open_sockets()
        connected, _ = await mine.connect(timeout=5)
        assert connected
        assert await open_sockets() == before + 1
        refused, _ = await foreign.connect(timeout=5)
        assert not refused
        assert await open_sockets() == before + 1
        await mine.disconnect()
        assert await open_sockets() == before

    run_scenario(scenario)
