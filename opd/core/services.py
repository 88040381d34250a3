"""Helpers every app's services share."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models

from .errors import ValidationFailed


def validate_model(instance: models.Model, *, exclude: Iterable[str] | None = None) -> None:
    """Run the model's field validators and constraints; raise ValidationFailed naming each field."""
    try:
        instance.full_clean(exclude=list(exclude or []), validate_unique=True, validate_constraints=True)
    except ValidationError as exc:
        fields = {
            key if key != "__all__" else "non_field_errors": msgs for key, msgs in exc.message_dict.items()
        }
        first_field, first_msgs = next(iter(fields.items()))
        raise ValidationFailed(f"{first_field}: {first_msgs[0]}", fields=fields) from exc
