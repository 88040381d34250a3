"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was stored")
    cache.delete(key)


def _check_broker() -> None:
    from opd.celery import app

    # One attempt with a short connect timeout: a probe must answer quickly, and the orchestrator
    # that calls it does the retrying.
    with app.connection_for_write(connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=0)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}
# Without the database a node can do nothing: it must leave the load balancer's rotation (503). Without
# Redis (cache, broker) it still lists slots, books and records consultations, only slower and without
# live pushes or queued messages; every node shares the same Redis, so answering 503 for it would take
# every node out at once and turn a degraded service into none. Those parts answer 200, "degraded".
ESSENTIAL = frozenset({"database"})


@require_GET
@never_cache
def readyz(request):
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            # The details (hosts, ports, driver messages) go to the log, not to whoever can reach the URL.
            logger.warning("readiness check %s failed: %s: %s", name, exc.__class__.__name__, exc)
            results[name] = "failing"
    failing = [name for name, state in results.items() if state != "ok"]
    unavailable = any(name in ESSENTIAL for name in failing)
    status = "unavailable" if unavailable else ("degraded" if failing else "ok")
    body: dict[str, object] = {"status": status, "checks": results}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if unavailable else 200)


@require_GET
def home(request):
    """The landing page: what the clinics offer (open clinics and their open departments) and the way in.

    Visitors see only the clinics the deployment publishes (tenancy.public_clinics; none by default);
    signed-in users their own organization's, or their clinics'.
    """
    from django.db.models import Prefetch

    from opd.core.models import Department
    from opd.core.tenancy import clinics_for, public_clinics

    clinics = clinics_for(request.user) if request.user.is_authenticated else public_clinics()
    clinics = clinics.filter(is_active=True).prefetch_related(
        Prefetch(
            "departments",
            queryset=Department.objects.filter(is_active=True).order_by("name"),
            to_attr="open_departments",
        )
    )
    return render(request, "home.html", {"clinics": clinics.order_by("name")[:50]})
