"""Writing, sending and resending messages: the outbox and its delivery state machine.

The row is the truth; a Celery message is only a wake-up call.

    queued --claim--> sending --sent--> sent
       ^                 |  \\--error, attempts left--> queued (next_attempt_at = now + backoff)
       |                 |   \\-error, last attempt or permanent--> failed
       |                 \\--lease expired (worker died)--> claimable again
    cancelled <--(reminder of an appointment that is no longer booked)

Exactly once, and how far that goes:

* One message, one row. `dedup_key` is unique (appointment + kind + channel, + plan version and lead
  time for reminders), and `notification_enqueue` turns the duplicate insert into "already there". A
  booking event delivered twice, or a reminder planned by two processes at once, still makes one row.
* One sender at a time. `notification_send` claims the row with one conditional UPDATE
  (status queued, or sending with an expired lease; next_attempt_at <= now) that sets status=sending,
  attempts+1, a fresh claim token and next_attempt_at = now + lease. InnoDB serializes the UPDATEs on the
  row, so of any number of workers holding a task for it (duplicate Celery deliveries, the dispatcher
  re-enqueueing, a resent task after a worker was lost) exactly one sees rowcount 1. The others stop.
* Only the claim holder records the outcome: sent/failed/queued-for-retry are written with
  `WHERE claim_token = <ours> AND status = sending`. A worker that outlived its lease cannot overwrite
  the outcome of the worker that took over.
* The lease (OPD_NOTIFICATION_LEASE_SECONDS, default 300 s) is longer than the send task's hard time
  limit (90 s) and the backends' timeouts, so a live sender is killed or gives up before anyone else may
  claim its row; after a worker dies (SIGKILL, OOM, power), the row becomes claimable when the lease
  ends, and the dispatcher re-enqueues it.
* No database transaction is open while a backend talks to the provider: the claim and the outcome are
  two short autocommitted UPDATEs, so a slow SMTP server holds no row lock.
* The one window no database can close: the provider accepted the message and the worker died before
  the "sent" UPDATE. The message is then sent again after the lease, carrying the same message_id
  (SMS Idempotency-Key header, e-mail Message-ID), which lets providers that honour it drop the copy.

Retries: a failed attempt records last_error and, while attempts < OPD_NOTIFICATION_MAX_ATTEMPTS and the
error is not permanent, puts the row back to queued with next_attempt_at = now + backoff (30 s, 60 s,
120 s ... capped at an hour). The attempts counter lives in the row, not in the Celery message, so it
survives worker deaths and duplicate deliveries. Then the row is failed with the error kept.

Lost wake-ups: a Celery message can be lost (broker down at commit, a worker killed holding it under a
long visibility timeout). `notifications_dispatch_due`, run every minute by beat, finds open rows whose
next_attempt_at has passed and that no task was sent for recently (dispatched_at), with one query on the
(status, next_attempt_at) index, and enqueues them again; each row is taken with a conditional UPDATE of
dispatched_at, so two dispatchers running at once enqueue it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.db import retry_on_deadlock
from opd.core.errors import Conflict
from opd.core.models import User
from scheduling.models import Appointment, AppointmentStatus

from .. import conf
from ..backends import DeliveryError, OutgoingMessage, backend_for
from ..keys import version_prefix
from ..models import OPEN_STATUSES, Channel, Kind, Notification, Status

logger = logging.getLogger(__name__)

# Worker clocks and the ETA of a retry may be a hair apart; a task that arrives this early still counts.
CLOCK_SLACK = dt.timedelta(seconds=1)
ERROR_MAX = 2000


# Published (on commit) with the ids of outbox rows whose send task should go out now; the subscriber
# (notifications.subscribers) puts the tasks on the queue. Services never import tasks.
NOTIFICATIONS_DISPATCHED = "notifications.dispatched"


def _after_commit_send(rows: list[Notification]) -> None:
    ids = [row.pk for row in rows if row.dispatched_at is not None]
    if ids:
        # After commit, and a broker that is down must not undo the commit (nor hide it from the caller):
        # events.publish delivers on commit and logs a failing subscriber.
        events.publish(NOTIFICATIONS_DISPATCHED, notification_ids=ids)


def new_notification(
    *,
    organization_id: int,
    channel: str,
    kind: str,
    dedup_key: str,
    body: str,
    subject: str = "",
    body_html: str = "",
    to: str = "",
    patient_id: int | None = None,
    user_id: int | None = None,
    clinic_id: int | None = None,
    appointment_id: int | None = None,
    lead_minutes: int | None = None,
    scheduled_for: dt.datetime | None = None,
    resend_of_id: int | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> Notification:
    """An unsaved outbox row. Due now: marked dispatched (its task goes out on commit); later: left to
    the dispatcher."""
    now = now or timezone.now()
    scheduled_for = scheduled_for or now
    return Notification(
        organization_id=organization_id,
        clinic_id=clinic_id,
        patient_id=patient_id,
        user_id=user_id,
        appointment_id=appointment_id,
        channel=channel,
        kind=kind,
        to=to,
        subject=subject,
        body=body,
        body_html=body_html,
        dedup_key=dedup_key,
        lead_minutes=lead_minutes,
        scheduled_for=scheduled_for,
        next_attempt_at=scheduled_for,
        dispatched_at=now if scheduled_for <= now else None,
        resend_of_id=resend_of_id,
        created_by=actor if actor and actor.pk else None,
    )


def _insert_one(row: Notification) -> tuple[Notification, bool]:
    try:
        # A savepoint, so a duplicate key leaves the caller's transaction usable.
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        existing = Notification.objects.filter(dedup_key=row.dedup_key).first()
        if existing is None:
            raise  # another constraint: a bug in the caller, not a duplicate
        return existing, False
    return row, True


@retry_on_deadlock
def notification_enqueue(*, row: Notification) -> tuple[Notification, bool]:
    """Write one message (from new_notification) to the outbox, once per dedup key; returns (row,
    created). A second call with the same key returns the existing row, whatever its state."""
    with transaction.atomic():
        saved, created = _insert_one(row)
        if created:
            _after_commit_send([saved])
    return saved, created


@retry_on_deadlock
def notifications_enqueue(*, rows: list[Notification]) -> list[Notification]:
    """Write several messages (from new_notification) in one INSERT, once per dedup key each; returns
    the rows, existing ones as they are. A duplicate key anywhere (an event delivered twice) sends the
    batch down the one-by-one path, which keeps the rows already there."""
    if not rows:
        return []
    with transaction.atomic():
        try:
            with transaction.atomic():
                saved = Notification.objects.bulk_create(rows)
        except IntegrityError:
            saved, created = [], []
            for row in rows:
                row.pk = None
                kept, is_new = _insert_one(row)
                saved.append(kept)
                if is_new:
                    created.append(kept)
            _after_commit_send(created)
            return saved
        if any(row.pk is None for row in saved):  # MySQL proper returns no ids from a bulk INSERT
            ids = dict(
                Notification.objects.filter(dedup_key__in=[r.dedup_key for r in saved]).values_list(
                    "dedup_key", "pk"
                )
            )
            for row in saved:
                row.pk = ids[row.dedup_key]
        _after_commit_send(saved)
    return saved


@dataclass(frozen=True)
class SendOutcome:
    """What a send attempt came to. `retry_in`: seconds until the row may be tried again (None: never)."""

    status: str
    retry_in: float | None = None


def _message(notification: Notification) -> OutgoingMessage:
    return OutgoingMessage(
        notification_id=notification.pk,
        # The same on every attempt of this row; a resend is a new row with a new id.
        message_id=f"opd-notification-{notification.pk}",
        channel=notification.channel,
        kind=notification.kind,
        to=notification.to,
        subject=notification.subject,
        body=notification.body,
        body_html=notification.body_html,
        user_id=notification.user_id,
        created_at=notification.created_at,
    )


def _record(pk: int, token: str, **fields: Any) -> bool:
    """Write the outcome of our claim; False when the claim was lost (our lease ran out and another
    worker took the row)."""
    written = Notification.objects.filter(pk=pk, claim_token=token, status=Status.SENDING).update(
        **fields, updated_at=timezone.now()
    )
    if not written:
        logger.warning("notification %s: lease lost before the outcome was recorded", pk)
    return bool(written)


def _reminder_is_stale(notification: Notification, now: dt.datetime) -> str:
    """A reminder whose appointment was cancelled, moved, started or passed must not go out, even if the
    event that should have cancelled it was missed."""
    if notification.kind != Kind.REMINDER or notification.appointment_id is None:
        return ""
    appointment = (
        Appointment.objects.filter(pk=notification.appointment_id)
        .only("status", "start", "reschedule_count")
        .first()
    )
    if appointment is None or appointment.status != AppointmentStatus.BOOKED:
        return "The appointment is no longer booked."
    if not notification.dedup_key.startswith(version_prefix(appointment.pk, appointment.reschedule_count)):
        return "The appointment was moved; this reminder was for its earlier time."
    if appointment.start <= now:
        return "The appointment has already started."
    return ""


def notification_send(*, notification_id: int) -> SendOutcome:
    """Claim the row, hand it to its backend, record the outcome. See the module docstring."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = Notification.objects.filter(
        pk=notification_id, status__in=OPEN_STATUSES, next_attempt_at__lte=now + CLOCK_SLACK
    ).update(
        status=Status.SENDING,
        attempts=F("attempts") + 1,
        claim_token=token,
        next_attempt_at=now + dt.timedelta(seconds=conf.lease_seconds()),
        updated_at=now,
    )
    if not claimed:
        row = Notification.objects.filter(pk=notification_id).values("status", "next_attempt_at").first()
        if row is None:
            return SendOutcome("missing")
        if row["status"] in OPEN_STATUSES:
            # Early (a duplicate task) or another worker holds the lease: look again when it may be ours.
            wait = (row["next_attempt_at"] - now).total_seconds()  # type: ignore[operator]  # an open row always has its next attempt
            return SendOutcome("not_due", retry_in=max(wait, 0.0) + CLOCK_SLACK.total_seconds())
        return SendOutcome(row["status"])

    notification = Notification.objects.get(pk=notification_id)
    stale = _reminder_is_stale(notification, now)
    if stale:
        _record(
            notification.pk,
            token,
            status=Status.CANCELLED,
            last_error=stale,
            next_attempt_at=None,
            finished_at=timezone.now(),
        )
        return SendOutcome(Status.CANCELLED)

    try:
        provider_id = backend_for(notification.channel).send(_message(notification))
    except Exception as exc:  # any error of any backend is recorded on the row, never lost in a log
        return _record_failure(notification, token, exc)

    done = timezone.now()
    _record(
        notification.pk,
        token,
        status=Status.SENT,
        sent_at=done,
        finished_at=done,
        next_attempt_at=None,
        provider_message_id=(provider_id or "")[:200],
        last_error="",
    )
    return SendOutcome(Status.SENT)


def _record_failure(notification: Notification, token: str, exc: Exception) -> SendOutcome:
    permanent = isinstance(exc, DeliveryError) and exc.permanent
    error = f"attempt {notification.attempts}: {type(exc).__name__}: {exc}"[:ERROR_MAX]
    now = timezone.now()
    if permanent or notification.attempts >= conf.max_attempts():
        logger.warning("notification %s failed for good: %s", notification.pk, error)
        _record(
            notification.pk,
            token,
            status=Status.FAILED,
            last_error=error,
            next_attempt_at=None,
            finished_at=now,
        )
        return SendOutcome(Status.FAILED)
    delay = conf.backoff_seconds(notification.attempts)
    retry_at = now + dt.timedelta(seconds=delay)
    logger.info("notification %s: %s; retrying in %.1f s", notification.pk, error, delay)
    # dispatched_at = retry_at: the task retries itself then; the dispatcher steps in only if it does not.
    _record(
        notification.pk,
        token,
        status=Status.QUEUED,
        last_error=error,
        next_attempt_at=retry_at,
        dispatched_at=retry_at,
    )
    return SendOutcome("retry", retry_in=delay)


def notifications_dispatch_due(*, now: dt.datetime | None = None, limit: int | None = None) -> list[int]:
    """Enqueue a send task for every open row that is due and has no live task: reminders whose time has
    come, retries whose task was lost, sends whose worker died (lease expired). Returns the ids enqueued.

    One query on the (status, next_attempt_at) index finds the candidates; each is then taken with a
    conditional UPDATE of dispatched_at (rowcount 1 = ours), so concurrent runs never enqueue a row twice.
    """
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=conf.redispatch_seconds())
    not_recently = Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=stale)
    due = Notification.objects.filter(status__in=OPEN_STATUSES, next_attempt_at__lte=now)
    candidates = list(
        due.filter(not_recently)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: limit or conf.dispatch_batch()]
    )
    taken = [pk for pk in candidates if due.filter(not_recently, pk=pk).update(dispatched_at=now)]
    if taken:
        # Each UPDATE above committed on its own: outside a transaction the event is delivered at once.
        events.publish(NOTIFICATIONS_DISPATCHED, notification_ids=taken)
    return taken


def _current_address(original: Notification) -> str:
    """A resend goes to the patient's address as it is now (reception may just have corrected it)."""
    patient = original.patient
    if patient is None:
        user = original.user
        current = user.email if user is not None and original.channel == Channel.EMAIL else ""
    elif original.channel == Channel.EMAIL:
        current = patient.email
    elif original.channel == Channel.SMS:
        current = patient.phone
    else:
        current = ""
    return current or original.to


RESENDABLE = (Status.SENT, Status.FAILED)


@retry_on_deadlock
def notification_resend(*, actor: User | None, notification: Notification) -> Notification:
    """Send a sent or failed message again, as a new row (the original keeps its history).

    Locks the first message of the chain, so two resends at once get numbers 1 and 2, never the same key."""
    with transaction.atomic():
        original = Notification.objects.select_related("patient", "user").get(pk=notification.pk)
        if original.status not in RESENDABLE:
            raise Conflict(
                f"A message that is {original.get_status_display().lower()} cannot be resent; "
                "only sent or failed messages can.",
                code="invalid_state",
            )
        root = Notification.objects.select_for_update().get(pk=original.resend_of_id or original.pk)
        number = Notification.objects.filter(resend_of=root).count() + 1
        copy, _ = notification_enqueue(
            row=new_notification(
                organization_id=original.organization_id,
                clinic_id=original.clinic_id,
                patient_id=original.patient_id,
                user_id=original.user_id,
                appointment_id=original.appointment_id,
                channel=original.channel,
                kind=original.kind,
                to=_current_address(original),
                subject=original.subject,
                body=original.body,
                body_html=original.body_html,
                dedup_key=f"{root.dedup_key}:resend:{number}",
                lead_minutes=original.lead_minutes,
                resend_of_id=root.pk,
                actor=actor,
            )
        )
        audit(
            actor=actor,
            action="notification.resent",
            obj=copy,
            organization_id=original.organization_id,
            original=original.pk,
        )
    return copy


def _cancel_queued(*, queryset: QuerySet[Notification], reason: str) -> int:
    """Cancel the queued rows of `queryset` (rows already being sent cannot be recalled)."""
    now = timezone.now()
    return queryset.filter(status=Status.QUEUED).update(
        status=Status.CANCELLED, next_attempt_at=None, finished_at=now, last_error=reason, updated_at=now
    )
