"""Reviews of flagged accesses (break the glass): the administrator's answer, in its own row."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ..errors import Conflict, NotFound, PermissionDenied
from ..models import AccessReview, AuditEvent, Role, User
from ..selectors import flagged_accesses_for


def access_review_create(*, actor: User, event: AuditEvent, note: str = "") -> AccessReview:
    """Mark a flagged access reviewed (who, when, what they concluded). Organization admins and
    superusers; an access of another organization is unknown (404); a second review is a conflict."""
    if not (actor.is_superuser or actor.role == Role.ADMIN):
        raise PermissionDenied("Only administrators review flagged accesses.")
    if not flagged_accesses_for(actor).filter(pk=event.pk).exists():
        raise NotFound("No such flagged access.")
    try:
        with transaction.atomic():
            return AccessReview.objects.create(event=event, reviewer=actor, note=note.strip()[:4000])
    except IntegrityError as exc:
        raise Conflict("This access has already been reviewed.") from exc
