"""Clinic statistics per clinic-local day: who may see what (scope), appointments (daily), NEWS2 bands
and care notes (clinical). Views, reports and the page call these; see each module for definitions."""

from .clinical import CARE_NOTE_COLUMNS, NEWS2_COLUMNS, care_notes_daily, news2_daily
from .daily import DAILY_COLUMNS, STATUSES, daily_statistics, summarize
from .revenue import REVENUE_COLUMNS, revenue_per_day
from .scope import (
    MAX_DAYS,
    StatsScope,
    days_between,
    resolve_scope,
    scope_for_organization,
    validate_range,
)

__all__ = [
    "CARE_NOTE_COLUMNS",
    "DAILY_COLUMNS",
    "MAX_DAYS",
    "NEWS2_COLUMNS",
    "REVENUE_COLUMNS",
    "STATUSES",
    "StatsScope",
    "care_notes_daily",
    "daily_statistics",
    "days_between",
    "news2_daily",
    "resolve_scope",
    "revenue_per_day",
    "scope_for_organization",
    "summarize",
    "validate_range",
]
