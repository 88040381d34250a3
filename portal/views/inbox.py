"""My messages: the in-app messages a patient chose to receive, with mark as read (one or all).

The list and the count in the navigation update live over ws/notifications/ (static/js/inbox.js);
without JavaScript the page and its forms work as they are.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from notifications.selectors import inbox_for, unread_count
from notifications.services import notification_mark_read, notifications_mark_all_read
from opd.core.errors import NotFound

from .common import PatientRequest, patient_required

PER_PAGE = 20


@patient_required
@require_GET
def inbox(request: PatientRequest) -> HttpResponse:
    page = Paginator(inbox_for(request.user).select_related("appointment"), PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "unread": unread_count(request.user)}
    return render(request, "portal/inbox.html", context)


@patient_required
@require_POST
def mark_read(request: PatientRequest, pk: int) -> HttpResponse:
    try:
        notification_mark_read(user=request.user, notification_id=pk)
    except NotFound:
        return render(request, "portal/inbox_missing.html", status=404)
    return redirect("portal:messages")


@patient_required
@require_POST
def mark_all_read(request: PatientRequest) -> HttpResponse:
    notifications_mark_all_read(user=request.user)
    return redirect("portal:messages")
