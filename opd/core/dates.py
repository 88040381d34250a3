"""The days the platform reasons about. Python dates run from year 1 to 9999, and code that looks a day
or a week either side of a requested day (time-zone margins, inclusive ends) overflows at those
limits; no clinic has a record outside these bounds, so input outside them is refused up front."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError

EARLIEST_DAY = dt.date(1900, 1, 1)
LATEST_DAY = dt.date(2999, 12, 31)
OUT_OF_RANGE = f"Use a day between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}."


def day_in_range(value: dt.date) -> bool:
    return EARLIEST_DAY <= value <= LATEST_DAY


def validate_day(value: dt.date) -> None:
    """A form and serializer validator: refuse a day outside [EARLIEST_DAY, LATEST_DAY]."""
    if not day_in_range(value):
        raise ValidationError(OUT_OF_RANGE, code="out_of_range")
