"""The audit trail's hash chains: sealing and verification.

Why seal afterwards rather than chain inside each writing transaction: a chain link made in the writer's
transaction needs the chain's head, so every audited write of an organization (every booking) would
queue on one row lock until commit. Instead each row gets a MAC of its own content when it is written
(opd.core.audit: no shared state, no lock), and the sealer, every minute from beat and at the start of
verification, appends the organization's new rows to its chain under that chain's lock, in id order:

    seal.hash = HMAC(OPD_AUDIT_KEY, prev_hash, chain, seq, event id, the event's canonical content)

What each part catches, for someone with database access but not the key:
- an altered row: its MAC no longer matches (and neither does its seal);
- a forged row: it has no valid MAC, whether the sealer sealed it or not;
- a deleted row: its seal points at nothing; a deleted seal leaves a gap in `seq`; a rewritten seal
  breaks the next one's `prev_hash` and cannot be recomputed without the key;
- a reordered trail (ids or seals swapped): the seal covers the event's id and its place;
- a row inserted with an old date, below what the sealer looks at: unsealed and older than the margin.

The window: a row forged with a valid MAC needs the key; without it the worst is a forged row sealed
within the minute, which verification names by its MAC.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from ..audit import canonical_content, event_mac, keyed_digest
from ..models import AuditChain, AuditEvent, AuditSeal, Organization, Role, User

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
BATCH = 1000
NO_ORGANIZATION = 0  # the chain of events without an organization (a superuser's own actions)


def chain_of(organization_id: int | None) -> int:
    return organization_id or NO_ORGANIZATION


def chain_label(chain: int) -> str:
    return "events without an organization" if chain == NO_ORGANIZATION else f"organization {chain}"


def seal_hash(*, prev_hash: str, chain: int, seq: int, event: AuditEvent) -> str:
    return keyed_digest(
        "opd.audit.seal", prev_hash, str(chain), str(seq), str(event.pk), canonical_content(event)
    )


def _chain_events(chain: int) -> QuerySet[AuditEvent]:
    if chain == NO_ORGANIZATION:
        return AuditEvent.objects.filter(organization__isnull=True)
    return AuditEvent.objects.filter(organization_id=chain)


def _unsealed(chain: int) -> QuerySet[AuditEvent]:
    return _chain_events(chain).filter(~Exists(AuditSeal.objects.filter(event_id=OuterRef("pk"))))


def _margin() -> dt.timedelta:
    return dt.timedelta(minutes=settings.OPD_AUDIT_SEAL_MARGIN_MINUTES)


def all_chains() -> list[int]:
    return [NO_ORGANIZATION, *Organization.objects.order_by("pk").values_list("pk", flat=True)]


def audit_seal(*, chain: int) -> int:
    """Append the chain's unsealed events to it, oldest id first; answers how many were sealed.

    Locks the chain's AuditChain row (select_for_update) for each batch, so two sealers (beat and a
    verification, two workers) take turns and never hand out one `seq` twice; the unique
    (chain, seq) constraint is the backstop. It looks at events from OPD_AUDIT_SEAL_MARGIN_MINUTES
    before its previous run on: a row whose transaction committed after later rows were sealed is
    still found, and the query stays on the (organization, created_at) index however long the trail.
    """
    AuditChain.objects.bulk_create([AuditChain(chain=chain)], ignore_conflicts=True)
    sealed = 0
    while True:
        with transaction.atomic():
            AuditChain.objects.select_for_update().get(chain=chain)
            # Read after the lock: under READ COMMITTED this sees the seals the previous holder committed.
            head = AuditSeal.objects.filter(chain=chain).order_by("-seq").first()
            pending = _unsealed(chain)
            if head is not None:
                pending = pending.filter(created_at__gte=head.sealed_at - _margin())
            events = list(pending.order_by("pk")[:BATCH])
            prev_hash, seq = (head.hash, head.seq) if head is not None else (GENESIS, 0)
            now = timezone.now()
            seals = []
            for event in events:
                seq += 1
                digest = seal_hash(prev_hash=prev_hash, chain=chain, seq=seq, event=event)
                seals.append(
                    AuditSeal(
                        chain=chain,
                        seq=seq,
                        event_id=event.pk,
                        prev_hash=prev_hash,
                        hash=digest,
                        sealed_at=now,
                    )
                )
                prev_hash = digest
            AuditSeal.objects.bulk_create(seals)
        sealed += len(seals)
        if len(events) < BATCH:
            return sealed


def audit_seal_all() -> int:
    return sum(audit_seal(chain=chain) for chain in all_chains())


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | deleted | inserted | seal
    message: str
    event_id: int | None = None
    seq: int | None = None


@dataclass
class ChainReport:
    chain: int
    seals: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        return chain_label(self.chain)


def _seals(chain: int) -> Iterator[list[AuditSeal]]:
    last = 0
    while True:
        batch = list(AuditSeal.objects.filter(chain=chain, seq__gt=last).order_by("seq")[:BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1].seq


def _walk(chain: int, report: ChainReport) -> Problem | None:
    """The first break in the chain, following its seals in order."""
    prev_hash, expected = GENESIS, 1
    for batch in _seals(chain):
        events = AuditEvent.objects.in_bulk([seal.event_id for seal in batch])
        for seal in batch:
            where = f"seal {seal.seq} (event {seal.event_id})"
            if seal.seq != expected:
                return Problem(
                    "deleted",
                    f"seal {expected} is missing: the seals go from {expected - 1} to {seal.seq} "
                    "(a seal was deleted)",
                    seq=expected,
                )
            if seal.prev_hash != prev_hash:
                return Problem(
                    "seal",
                    f"{where} does not follow seal {seal.seq - 1}: a seal was altered, inserted or reordered",
                    event_id=seal.event_id,
                    seq=seal.seq,
                )
            event = events.get(seal.event_id)
            if event is None:
                return Problem(
                    "deleted",
                    f"event {seal.event_id} (seal {seal.seq}) is missing: it was deleted",
                    event_id=seal.event_id,
                    seq=seal.seq,
                )
            if not event.mac or event.mac != event_mac(event):
                return Problem(
                    "altered",
                    f"event {event.pk} (seal {seal.seq}, {event.action}) was altered or forged: its content "
                    "no longer matches its MAC",
                    event_id=event.pk,
                    seq=seal.seq,
                )
            if seal.hash != seal_hash(prev_hash=prev_hash, chain=chain, seq=seal.seq, event=event):
                return Problem(
                    "seal",
                    f"{where} does not match the event: the seal was altered, or events were swapped or moved",
                    event_id=event.pk,
                    seq=seal.seq,
                )
            prev_hash, expected = seal.hash, expected + 1
            report.seals += 1
    return None


def audit_verify_chain(*, chain: int, seal: bool = True) -> ChainReport:
    """Seal what is pending, then walk the chain; names the first broken link and the oldest event that
    was never sealed although older than the sealing margin (inserted after its time)."""
    started = timezone.now()
    if seal:
        audit_seal(chain=chain)
    report = ChainReport(chain=chain)
    problem = _walk(chain, report)
    if problem is not None:
        report.problems.append(problem)
    stray = _unsealed(chain).filter(created_at__lt=started - _margin()).order_by("pk").first()
    if stray is not None:
        report.problems.append(
            Problem(
                "inserted",
                f"event {stray.pk} ({stray.action}, {stray.created_at:%Y-%m-%d %H:%M:%S} UTC) has no seal "
                "although older than the sealing margin: it was inserted after its time",
                event_id=stray.pk,
            )
        )
    return report


def audit_verify(*, chains: Iterable[int] | None = None) -> list[ChainReport]:
    """Verify the given chains (organization ids, 0 for events without one), or every chain."""
    return [audit_verify_chain(chain=chain) for chain in (all_chains() if chains is None else chains)]


def _recipients(chain: int) -> list[str]:
    people = User.objects.filter(is_active=True).exclude(email="")
    if chain == NO_ORGANIZATION:
        people = people.filter(is_superuser=True)
    else:
        people = people.filter(organization_id=chain, role=Role.ADMIN)
    return sorted(set(people.values_list("email", flat=True)))


def audit_verify_and_report() -> list[ChainReport]:
    """The daily check: verify every chain and mail each organization's admins its result (superusers
    get the chain of events without an organization). A failure always; an OK only with
    OPD_AUDIT_VERIFY_MAIL_OK, so that a stopped job is noticed by the missing mail."""
    reports = audit_verify()
    names = dict(Organization.objects.values_list("pk", "name"))
    for report in reports:
        if report.ok:
            logger.info("audit chain %s verified: %d seals", report.chain, report.seals)
        else:
            logger.error(
                "audit chain %s FAILED: %s", report.chain, "; ".join(p.message for p in report.problems)
            )
        if report.ok and not settings.OPD_AUDIT_VERIFY_MAIL_OK:
            continue
        recipients = _recipients(report.chain)
        if not recipients:
            continue
        who = names.get(report.chain, "events without an organization")
        if report.ok:
            subject = f"Audit trail verified: {who}"
            body = (
                f"The audit trail of {who} was verified: {report.seals} events chained, none altered, "
                "deleted or inserted.\n"
            )
        else:
            subject = f"AUDIT TRAIL VERIFICATION FAILED: {who}"
            body = (
                f"The audit trail of {who} failed verification: rows were changed outside the application.\n\n"
                + "\n".join(f"- {problem.message}" for problem in report.problems)
                + "\n\nOnly the first break of the chain is named. Keep the database as it is and a copy "
                "of it; run `manage.py audit_verify --organization <id>` to see the result again.\n"
            )
        send_mail(subject, body, None, recipients)
    return reports
