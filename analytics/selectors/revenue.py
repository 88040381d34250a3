"""Revenue per clinic-local day: money taken at the desks less refunds, read from billing (which sits
below analytics). Not cached: a payment can land on any day's figure at any time, and the day's rows
are few (one per day and currency)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from billing.selectors import REVENUE_COLUMNS, revenue_daily

from .scope import StatsScope

__all__ = ["REVENUE_COLUMNS", "revenue_per_day"]


def revenue_per_day(scope: StatsScope, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    return revenue_daily(
        zones=scope.zones,
        date_from=date_from,
        date_to=date_to,
        department_id=scope.department_id,
        doctor_id=scope.doctor_id,
    )
