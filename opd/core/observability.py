"""Request ids, JSON log lines and Prometheus metrics for HTTP requests, Celery tasks and websockets.

One middleware (outermost) does all of a request's share, so the hot path pays for one call frame, one
clock pair and a handful of metric updates. Metrics are prometheus_client's: with PROMETHEUS_MULTIPROC_DIR
set (gunicorn's workers, Celery's prefork children, the ASGI server, all on one node) each process writes
its own files in that folder and `/metrics` adds them up; without it, the one process's registry answers.
The variable must be set before prometheus_client is first imported, that is in the environment that
starts the server.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hmac
import json
import logging
import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.db import connection
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from opd.core.log_redaction import redact

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# What we take from a client or a proxy: short, and only characters that cannot break a log line or a
# header (no spaces, quotes or control characters). Anything else is replaced, not trusted.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# The Celery message header that carries the request id into a task (opd.celery connects the signals).
TASK_HEADER = "opd_request_id"
SENT_AT_HEADER = "opd_sent_at"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("opd_request_id", default=None)
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("opd_task", default=None)

# --- metrics ---------------------------------------------------------------------------------------------
# The *_created series (one timestamp per label set) double the scrape for nothing we read.
disable_created_metrics()
# Labels are bounded: the URL pattern (never the path, which holds ids), the method, the task name.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_LATENCY = Histogram(
    "opd_http_request_duration_seconds",
    "Time from the first middleware to the response, per view (URL pattern) and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_QUERIES = Histogram(
    "opd_http_request_db_queries",
    "Database queries one request made, per view (URL pattern) and method.",
    ["route", "method"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144),
)
HTTP_RESPONSES = Counter(
    "opd_http_responses",
    "Responses per view (URL pattern), method and status code.",
    ["route", "method", "status"],
)
CONFLICTS = Counter(
    "opd_api_conflicts",
    "409 answers of the API by error code (slot_full, version_conflict, ...): contention on bookings.",
    ["code"],
)
TASK_LATENCY = Histogram(
    "opd_celery_task_duration_seconds",
    "Run time of a Celery task, per task name and final state.",
    ["task", "state"],
    buckets=LATENCY_BUCKETS,
)
TASK_QUEUE_WAIT = Histogram(
    "opd_celery_task_queue_wait_seconds",
    "Time from sending a task to a worker starting it, per task name (clocks of both machines).",
    ["task"],
    buckets=LATENCY_BUCKETS,
)
TASK_FAILURES = Counter("opd_celery_task_failures", "Celery tasks that raised, per task name.", ["task"])
TASK_RETRIES = Counter("opd_celery_task_retries", "Celery task retries, per task name.", ["task"])
# livesum: in multiprocess mode only live processes count, so a restarted ASGI server's old count drops.
OPEN_WEBSOCKETS = Gauge(
    "opd_websockets_open", "Websockets accepted and not yet closed.", multiprocess_mode="livesum"
)

UNMATCHED_ROUTE = "<unmatched>"
# The method is the client's to choose: any other word is one label value, not a new series each.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(value: str | None) -> str:
    if value and VALID_REQUEST_ID.match(value):
        return value
    return os.urandom(16).hex()


class _QueryCounter:
    """A database execute wrapper that counts; a few hundred nanoseconds per query."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


class ObservabilityMiddleware:
    """Outermost middleware: the request id (X-Request-ID when valid, else a new one, returned in the
    response header and put on every log line and task this request starts), and the request's latency,
    query count and status per URL pattern."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # META, not request.headers: building HttpHeaders walks every META key (tens of microseconds).
        rid = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        # Not reset on the way out: Django logs a 4xx/5xx ("Not Found: ...") after the middleware has
        # returned; the request_finished receiver below clears it.
        request_id_var.set(rid)
        counter = _QueryCounter()
        wrappers = connection.execute_wrappers
        wrappers.append(counter)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            wrappers.remove(counter)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        route = (match.route or match.view_name or UNMATCHED_ROUTE) if match else UNMATCHED_ROUTE
        method = request.method if request.method in KNOWN_METHODS else "other"
        latency, queries = _children(route, method)
        latency.observe(elapsed)
        queries.observe(counter.count)
        _responses(route, method, response.status_code).inc()
        response[REQUEST_ID_HEADER] = rid
        return response


# The labelled children by label values: a dict lookup per request instead of .labels(), which converts
# and checks every value under a lock (a few microseconds each). Routes, methods and statuses are bounded.
_CHILDREN: dict[tuple[str, str], tuple[Any, Any]] = {}
_RESPONSE_CHILDREN: dict[tuple[str, str, int], Any] = {}


def _children(route: str, method: str) -> tuple[Any, Any]:
    children = _CHILDREN.get((route, method))
    if children is None:
        children = _CHILDREN[(route, method)] = (
            HTTP_LATENCY.labels(route, method),
            HTTP_QUERIES.labels(route, method),
        )
    return children


def _responses(route: str, method: str, status: int) -> Any:
    child = _RESPONSE_CHILDREN.get((route, method, status))
    if child is None:
        child = _RESPONSE_CHILDREN[(route, method, status)] = HTTP_RESPONSES.labels(
            route, method, str(status)
        )
    return child


@receiver(request_finished, dispatch_uid="opd.core.observability.forget_request_id")
def forget_request_id(**kwargs: Any) -> None:
    request_id_var.set(None)


def count_conflict(code: str) -> None:
    CONFLICTS.labels(code).inc()


def _registry() -> CollectorRegistry:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    # A fresh registry per scrape reads every process's files as they are now.
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics in Prometheus' text format, for a scraper holding METRICS_TOKEN as a bearer token.

    Without METRICS_TOKEN configured the endpoint does not exist (404): nothing about the deployment is
    shown and nobody learns there is something to guess. Configured, a missing or wrong token is a 401
    with a Bearer challenge, so a misconfigured scraper says what is wrong.
    """
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


# --- websockets ------------------------------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CountOpenWebsockets:
    """ASGI wrapper around the websocket router: counts a socket from its accept to the end of its
    consumer (the client closed, the server closed it, or the consumer failed)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted = False

        async def counting_send(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                OPEN_WEBSOCKETS.inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                OPEN_WEBSOCKETS.dec()


# --- Celery ----------------------------------------------------------------------------------------------
_task_started: dict[str, tuple[float, contextvars.Token[str | None] | None, contextvars.Token[Any]]] = {}


def task_publishing(headers: MutableMapping[str, Any] | None = None, **kwargs: Any) -> None:
    """before_task_publish: the request (or task) that sends a task hands it its request id."""
    if headers is None:
        return
    rid = request_id_var.get()
    if rid:
        headers.setdefault(TASK_HEADER, rid)
    # Wall clock, not perf_counter: the worker reading it is another process, often another machine.
    headers.setdefault(SENT_AT_HEADER, time.time())


def task_starting(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """task_prerun: the task's log lines carry the request id it came with. An eager task (run inside
    the request) has no message header and keeps the request's id."""
    if task_id is None or task is None:
        return
    rid = getattr(task.request, TASK_HEADER, None)
    rid_token = request_id_var.set(rid) if isinstance(rid, str) and VALID_REQUEST_ID.match(rid) else None
    task_token = task_var.set((task.name, task_id))
    sent_at = getattr(task.request, SENT_AT_HEADER, None)
    if isinstance(sent_at, int | float):
        TASK_QUEUE_WAIT.labels(task.name).observe(max(0.0, time.time() - sent_at))
    _task_started[task_id] = (time.perf_counter(), rid_token, task_token)


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    """task_postrun: the run time by final state, and the context as it was before the task."""
    started = _task_started.pop(task_id or "", None)
    if started is None or task is None:
        return
    began, rid_token, task_token = started
    elapsed = time.perf_counter() - began
    TASK_LATENCY.labels(task.name, state or "UNKNOWN").observe(elapsed)
    # Logged inside the task's context, so the line carries its request id, task and task id.
    logger.info("Task finished: %s in %.3f s", state or "UNKNOWN", elapsed)
    task_var.reset(task_token)
    if rid_token is not None:
        request_id_var.reset(rid_token)


def task_failed(sender: Any = None, **kwargs: Any) -> None:
    TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def task_retried(sender: Any = None, **kwargs: Any) -> None:
    TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


def start_worker_exporter(**kwargs: Any) -> None:
    """worker_ready: with OPD_CELERY_METRICS_PORT set, the worker's main process serves its metrics (all
    its pool processes', through PROMETHEUS_MULTIPROC_DIR) on that port, for a node with no web server."""
    port = os.environ.get("OPD_CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    start_http_server(
        int(port), addr=os.environ.get("OPD_CELERY_METRICS_ADDR", "127.0.0.1"), registry=_registry()
    )


# --- logs ------------------------------------------------------------------------------------------------
class RequestIdFilter(logging.Filter):
    """Puts the request id (or "-") on every record, for the plain format's %(request_id)s."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and task and
    task_id inside a Celery task, exc on an exception.

    Only these fields: `extra=` values are left out, since they may hold a patient's data; the message
    goes through the same credential redaction as the ASGI server's lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": request_id_var.get(),
        }
        task = task_var.get()
        if task is not None:
            line["task"], line["task_id"] = task
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def json_logs_enabled() -> bool:
    return getattr(settings, "OPD_LOG_FORMAT", "plain") == "json"


def use_json_in_celery(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    """after_setup_logger / after_setup_task_logger: Celery sets up its own handlers in the worker;
    with OPD_LOG_FORMAT=json they write the same JSON lines as the web processes."""
    if logger is None or not json_logs_enabled():
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
