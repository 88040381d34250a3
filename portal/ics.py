"""An appointment as an iCalendar file (RFC 5545) that calendar apps import.

What the RFC asks and this file does: CRLF after every content line (3.1); lines longer than 75 octets
folded with CRLF + one space, never inside a UTF-8 character (3.1); TEXT values with backslash,
semicolon, comma and newline escaped (3.3.11); UID and DTSTAMP in every VEVENT (3.6.1); DTSTART/DTEND
as UTC date-times in the "Z" form (3.3.5, form 2), so no VTIMEZONE is needed and every app shows the
right local time. SEQUENCE grows with each reschedule and a cancelled appointment says
STATUS:CANCELLED, so re-importing the file updates the event instead of adding a second one.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Appointment, AppointmentStatus

PRODID = "-//OPD platform//Patient portal//EN"
MAX_OCTETS = 75


def escape_text(value: str) -> str:
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def utc_stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> str:
    """Split a content line into pieces of at most 75 octets; each continuation starts with a space."""
    if len(line.encode()) <= MAX_OCTETS:
        return line
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, MAX_OCTETS
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, MAX_OCTETS - 1  # the leading space takes one octet
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _one_line(text: str) -> str:
    return ", ".join(part.strip() for part in text.splitlines() if part.strip())


def appointment_ics(
    appointment: Appointment, *, uid_domain: str, url: str = "", now: dt.datetime | None = None
) -> str:
    """The calendar file of one appointment (clinic, department and doctor__user loaded)."""
    clinic, department = appointment.clinic, appointment.department
    doctor = appointment.doctor.display_name
    local_start = timezone.localtime(appointment.start, clinic.tz)
    description = [
        f"{department.name} appointment with {doctor} at {clinic.name}.",
        f"Starts {local_start:%a %d %b %Y, %H:%M} {clinic.time_zone} (clinic time).",
    ]
    if appointment.reason:
        description.append(f"Reason: {appointment.reason}")
    if clinic.phone:
        description.append(f"Clinic phone: {clinic.phone}")
    if url:
        description.append(f"Manage this appointment: {url}")
    location = ", ".join(part for part in (clinic.name, _one_line(clinic.address)) if part)
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    properties = [
        ("UID", f"appointment-{appointment.pk}@{uid_domain}"),
        ("DTSTAMP", utc_stamp(now or timezone.now())),
        ("DTSTART", utc_stamp(appointment.start)),
        ("DTEND", utc_stamp(appointment.end)),
        ("SEQUENCE", str(appointment.reschedule_count + (1 if cancelled else 0))),
        ("STATUS", "CANCELLED" if cancelled else "CONFIRMED"),
        ("SUMMARY", escape_text(f"{department.name} appointment with {doctor}")),
        ("LOCATION", escape_text(location)),
        ("DESCRIPTION", escape_text("\n".join(description))),
        ("TRANSP", "OPAQUE"),
    ]
    if url:
        properties.append(("URL", url))  # a URI value: not TEXT, so not escaped
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        *(f"{name}:{value}" for name, value in properties),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{fold(line)}\r\n" for line in lines)


def response(request: HttpRequest, appointment: Appointment, *, url: str = "") -> HttpResponse:
    """The file as a download, for the portal page, the manage-booking link and the API alike. `url`:
    where the event links to (default: the portal's page of the appointment)."""
    body = appointment_ics(
        appointment,
        uid_domain=request.get_host().rsplit(":", 1)[0] or "opd.local",
        url=url or request.build_absolute_uri(reverse("portal:appointment", args=[appointment.pk])),
    )
    answer = HttpResponse(body.encode(), content_type="text/calendar; charset=utf-8")
    answer["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    answer["Cache-Control"] = "private, no-store"
    return answer
