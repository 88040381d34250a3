"""My record: completed consultation summaries, prescriptions and results, read-only."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..selectors import clinical_record
from .common import PatientRequest, patient_required

RECORDS_PER_PAGE = 10


@patient_required
@require_GET
def record(request: PatientRequest) -> HttpResponse:
    records = clinical_record(request.user, request.patient)
    page = Paginator(records, RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "portal/record.html", {"patient": request.patient, "page": page})
