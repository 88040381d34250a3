"""Clinic time for staff: a moment on the clinic's wall clock with the zone named, and the clinic-local
days people type into search boxes.

Times are stored in UTC and shown in the clinic's zone with its name and abbreviation ("Sun 06 Dec 2026,
08:00 Asia/Kolkata (IST)"): a phone booking must land at the time the patient was told. The template
filter opd.core.templatetags.opd.local_time says the same without the abbreviation.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from django.utils import timezone

from .dates import day_in_range

DAY_FORMAT = "%a %d %b %Y"
TIME_FORMAT = "%H:%M"
# What the date searches accept, for help texts.
DAY_SEARCH_HELP = 'a clinic-local date: 2026-12-06, 06/12/2026 (day first), "06 Dec" or "6 December 2026"'

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_NUMERIC = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_WORDS = re.compile(r"^(\d{1,2})\s+([a-z]+)\.?(?:\s+(\d{4}))?$")


def zone_of(tz) -> zoneinfo.ZoneInfo:
    """A ZoneInfo from a ZoneInfo, a Clinic (anything with .tz) or a zone name."""
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz
    if hasattr(tz, "tz"):
        return tz.tz
    return zoneinfo.ZoneInfo(str(tz or "UTC"))


def zone_label(tz, at: dt.datetime | None = None) -> str:
    """'Asia/Kolkata (IST)': the zone's name and its abbreviation at `at` (now by default), which tells
    summer from winter time. Zones without a letter abbreviation show their offset ('+04')."""
    zone = zone_of(tz)
    abbreviation = (at or timezone.now()).astimezone(zone).tzname() or ""
    if not abbreviation or abbreviation == zone.key:
        return zone.key
    return f"{zone.key} ({abbreviation})"


def in_clinic_time(value: dt.datetime | None, tz, *, with_day: bool = True) -> str:
    """'Sun 06 Dec 2026, 08:00 Asia/Kolkata (IST)' (or '08:00 Asia/Kolkata (IST)' without the day);
    '-' for no value. `tz` is a Clinic, a ZoneInfo or a zone name."""
    if value is None:
        return "-"
    zone = zone_of(tz)
    local = value.astimezone(zone)
    clock = f"{local:{DAY_FORMAT}}, {local:{TIME_FORMAT}}" if with_day else f"{local:{TIME_FORMAT}}"
    return f"{clock} {zone_label(zone, value)}"


def clock(value: dt.datetime, tz) -> str:
    """Just '08:00' on the clinic's clock, for lists whose heading names the day and the zone."""
    return f"{value.astimezone(zone_of(tz)):{TIME_FORMAT}}"


def local_today(tz, now: dt.datetime | None = None) -> dt.date:
    return timezone.localtime(now or timezone.now(), zone_of(tz)).date()


def parse_local_day(term: str, today: dt.date) -> dt.date | None:
    """The clinic-local day a search term names, or None when it names none.

    Accepted: ISO '2026-12-06'; day first '06/12/2026' (or with dots), as written in the UK and India;
    '06 Dec', '6 December 2026' (month names or their first three letters). Without a year, the
    occurrence nearest `today` (so in December "06 Jan" is next month, in January "20 Dec" last month).
    """
    text = " ".join((term or "").strip().lower().replace(",", " ").split())
    if not text:
        return None
    year: int | None
    if match := _ISO.match(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _NUMERIC.match(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _WORDS.match(text):
        month_number = MONTHS.get(match.group(2))
        if month_number is None:
            return None
        day, month = int(match.group(1)), month_number
        year = int(match.group(3)) if match.group(3) else None
    else:
        return None
    if year is not None:
        try:
            found = dt.date(year, month, day)
        except ValueError:
            return None
        return found if day_in_range(found) else None
    candidates = []
    for candidate_year in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append(dt.date(candidate_year, month, day))
        except ValueError:
            continue  # 29 Feb outside a leap year
    if not candidates:
        return None
    return min(candidates, key=lambda d: (abs((d - today).days), d < today))
