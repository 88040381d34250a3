"""Query-string filters every app's FilterSets share. Bad values answer 400 naming the parameter."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from .dates import validate_day

# The largest id a BIGINT column holds; a larger number matches no row, and SQLite's driver raises
# OverflowError on it (a 500) instead of finding nothing.
MAX_ID = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number ("1.5" is an error, not a silent 1) that a BIGINT column can hold."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class DayFilter(django_filters.DateFilter):
    """A day within the bounds of opd.core.dates (a day near year 1 or 9999 is an error, not a 500)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validators", [validate_day])
        super().__init__(*args, **kwargs)


class _StrictBooleanField(forms.Field):
    """true/false (or 1/0); anything else is an error, where Django's NullBooleanField would ignore it."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = _StrictBooleanField
