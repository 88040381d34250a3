"""Template helpers every page shares: clinic-local times with the zone named, role navigation."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from opd.core.models import Role

register = template.Library()


def _zone(tz) -> zoneinfo.ZoneInfo:
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz
    if hasattr(tz, "tz"):  # a Clinic
        return tz.tz
    return zoneinfo.ZoneInfo(str(tz or "UTC"))


@register.filter
def local_time(value: dt.datetime | None, tz="UTC") -> str:
    """'Tue 24 Nov 2026, 09:00 Europe/London': unambiguous day, 24-hour time, zone named."""
    if not value:
        return ""
    zone = _zone(tz)
    return f"{value.astimezone(zone):%a %d %b %Y, %H:%M} {zone.key}"


@register.filter
def local_clock(value: dt.datetime | None, tz="UTC") -> str:
    """Just '09:00' in the clinic's zone (for lists whose heading names the day and zone)."""
    if not value:
        return ""
    return f"{value.astimezone(_zone(tz)):%H:%M}"


# (label, url name, roles that see it). Links whose URL is not installed yet are left out.
NAVIGATION = [
    ("Book", "portal:find", {Role.PATIENT}),
    ("My appointments", "portal:appointments", {Role.PATIENT}),
    ("My record", "portal:record", {Role.PATIENT}),
    ("Who opened my record", "portal:accesses", {Role.PATIENT}),
    ("Messages", "portal:messages", {Role.PATIENT}),
    ("What I owe", "portal:bills", {Role.PATIENT}),
    ("Profile", "portal:profile", {Role.PATIENT}),
    ("Today's queue", "queue:dashboard", {Role.DOCTOR}),
    ("Waiting room", "queue:waiting-rooms", {Role.STAFF, Role.ADMIN}),
    ("Analytics", "analytics:dashboard", {Role.ADMIN, Role.STAFF}),
    ("Cash-up", "billing:cash-up", {Role.STAFF, Role.ADMIN}),
    ("Admin", "admin:index", {Role.STAFF, Role.ADMIN}),
]


@register.simple_tag(takes_context=True)
def role_navigation(context) -> list[dict]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return []
    links = []
    for label, name, roles in NAVIGATION:
        if not (user.is_superuser or user.role in roles):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        links.append({"label": label, "name": name, "url": url, "current": request.path.startswith(url)})
    return links


@register.simple_tag
def status_badge(status: str, label: str | None = None) -> str:
    return format_html('<span class="badge badge-{}">{}</span>', status, label or status.replace("_", " "))
