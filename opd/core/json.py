"""JSON encoding that keeps what Django's own encoder drops."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


class FullPrecisionJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder cuts times to milliseconds; an archived row must come back to the microsecond."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)


# Event payloads (opd.core.events) are ids, names, dates and times, and small dicts of them. Stored in the
# outbox they must come back as the same Python values, so a handler called by the relay gets what the
# in-process call got: dates and times are tagged rather than flattened into strings.
_TAGS: dict[str, Any] = {
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$decimal": Decimal,
}


class EventJSONEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        # datetime before date: a datetime is a date too.
        if isinstance(o, dt.datetime):
            return {"$datetime": o.isoformat()}
        if isinstance(o, dt.date):
            return {"$date": o.isoformat()}
        if isinstance(o, dt.time):
            return {"$time": o.isoformat()}
        if isinstance(o, Decimal):
            return {"$decimal": str(o)}
        if isinstance(o, tuple | set | frozenset):
            return list(o)
        return super().default(o)


def _untag(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        ((tag, text),) = value.items()
        if tag in _TAGS and isinstance(text, str):
            return _TAGS[tag](text)
    return value


class EventJSONDecoder(json.JSONDecoder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("object_hook", _untag)
        super().__init__(*args, **kwargs)
