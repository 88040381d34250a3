from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEvent, User


def audit(
    *, actor: User | None, action: str, obj: models.Model, organization_id: int | None, **data: Any
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization_id=organization_id,
        actor=actor if actor and actor.pk else None,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        data=data,
    )
