"""JSON encoding that keeps what Django's own encoder drops."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


class FullPrecisionJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder cuts times to milliseconds; an archived row must come back to the microsecond."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)
