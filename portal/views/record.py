"""My record (completed consultation summaries, prescriptions and results, read-only) and who opened it."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from consultations.access import VIEWED, log_reads

from ..selectors import clinical_record, describe_accesses, record_accesses
from .common import PatientRequest, patient_required

RECORDS_PER_PAGE = 10
ACCESSES_PER_PAGE = 25


@patient_required
@require_GET
def record(request: PatientRequest) -> HttpResponse:
    """Logged as the patient's own read: one access row per consultation, prescription and result shown."""
    records = clinical_record(request.user, request.patient)
    page = Paginator(records, RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    shown = []
    for consultation in page:
        # clinical_record's prefetches: what the page shows of each consultation.
        shown += [consultation, *getattr(consultation, "shared_prescriptions", [])]
        shown += getattr(consultation, "shared_results", [])
    log_reads(request.user, VIEWED, shown)
    return render(request, "portal/record.html", {"patient": request.patient, "page": page})


@patient_required
@require_GET
def accesses(request: PatientRequest) -> HttpResponse:
    """Who opened my record: every read by someone else, newest first, 25 a page."""
    page = Paginator(record_accesses(request.user, request.patient), ACCESSES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = describe_accesses(list(page.object_list), request.patient)
    return render(
        request,
        "portal/accesses.html",
        {"patient": request.patient, "page": page, "rows": rows, "shows_names": any(r.name for r in rows)},
    )
