"""The portal inbox: a patient marks their in-app messages read, one or all.

Only the recipient's own delivered in-app messages can be marked (selectors.inbox_for); another user's
id is NotFound. Marking is idempotent (a message read twice keeps its first read time). On commit,
NOTIFICATIONS_READ carries the user's id, and the subscriber pushes the new unread count to their other
open pages. Not audited: whether a patient has opened a message is neither clinical data nor money.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from opd.core import events
from opd.core.errors import NotFound
from opd.core.models import User

from ..models import Notification
from ..selectors import inbox_for

NOTIFICATIONS_READ = "notifications.read"


def notification_mark_read(
    *, user: User, notification_id: int, now: dt.datetime | None = None
) -> Notification:
    """Mark one of the user's in-app messages read; returns it."""
    now = now or timezone.now()
    with transaction.atomic():
        notification = inbox_for(user).filter(pk=notification_id).first()
        if notification is None:
            raise NotFound("There is no such message in your inbox.", code="not_found")
        # Conditional, so two clicks (or two tabs) keep the first read time and publish once.
        marked = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=now, updated_at=now
        )
        if marked:
            notification.read_at = now
            events.publish(NOTIFICATIONS_READ, user_id=user.pk)
    return notification


def notifications_mark_all_read(*, user: User, now: dt.datetime | None = None) -> int:
    """Mark every unread in-app message of the user read; returns how many were."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(inbox_for(user).filter(read_at__isnull=True).values_list("pk", flat=True))
        marked = Notification.objects.filter(pk__in=ids, read_at__isnull=True).update(
            read_at=now, updated_at=now
        )
        if marked:
            events.publish(NOTIFICATIONS_READ, user_id=user.pk)
    return marked
