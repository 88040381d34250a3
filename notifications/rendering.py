"""Message text from Django templates: templates/notifications/<kind>/<channel>_{subject,body}.txt (+ .html).

Text templates switch autoescaping off themselves ({% autoescape off %}), as Django's own e-mail templates
do: an apostrophe in a name must not arrive as &#x27; in an SMS. A missing subject template means the
channel has none (SMS); a missing HTML template means a plain-text e-mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from opd.core.links import site_url
from opd.core.templatetags.opd import local_time
from scheduling.models import Appointment

from .links import manage_url
from .models import Channel

SUBJECT_MAX = 200


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    body_html: str = ""


def _render(name: str, context: dict[str, Any], *, required: bool) -> str:
    try:
        template = get_template(name)
    except TemplateDoesNotExist:
        if required:
            raise
        return ""
    return template.render(context)


def render_message(*, kind: str, channel: str, context: dict[str, Any]) -> Rendered:
    base = f"notifications/{kind}/{channel}"
    subject = " ".join(_render(f"{base}_subject.txt", context, required=False).split())[:SUBJECT_MAX]
    body = _render(f"{base}_body.txt", context, required=True)
    if channel == Channel.SMS:
        body = " ".join(body.split())
    else:
        # Templates leave blank lines where tags stood; keep paragraphs, drop the runs.
        body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    body_html = _render(f"{base}_body.html", context, required=False) if channel == Channel.EMAIL else ""
    return Rendered(subject=subject, body=body, body_html=body_html.strip())


def lead_text(minutes: int) -> str:
    """'tomorrow' reads better than 'in 24 hours' for the usual day-before reminder."""
    if minutes == 1440:
        return "tomorrow"
    if minutes % 1440 == 0:
        return f"in {minutes // 1440} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    return f"in {minutes} minutes"


def appointment_context(appointment: Appointment, **extra: Any) -> dict[str, Any]:
    """What every appointment message may say. Times are the clinic's, with the zone named.

    `manage_url`: the signed link to view, add to a calendar, cancel or reschedule this appointment
    without signing in (notifications.links); `portal_url`: where a patient with an account changes
    how they are contacted."""
    clinic = appointment.clinic
    patient = appointment.patient
    return {
        "patient_name": patient.first_name or patient.full_name,
        "patient_full_name": patient.full_name,
        "when": local_time(appointment.start, clinic),
        # SMS: the zone's abbreviation (IST, GMT) instead of its name keeps a text to one segment.
        "when_short": f"{timezone.localtime(appointment.start, clinic.tz):%a %d %b %H:%M %Z}",
        "doctor_name": appointment.doctor.display_name,
        "department_name": appointment.department.name,
        "clinic_name": clinic.name,
        "clinic_address": clinic.address,
        "clinic_phone": clinic.phone,
        "time_zone": clinic.time_zone,
        "site_url": site_url(),
        "manage_url": manage_url(appointment),
        "portal_url": site_url() + reverse("portal:profile"),
        "has_account": patient.user_id is not None,
        **extra,
    }
