"""NEWS2's clinical response as the clinic lives it: the latest score of a waiting or seen patient, and
the alert to the doctor (and the clinic's queue) when a new set of vitals raises the response to urgent
or emergency (RCP 2017: 5-6 urgent, 7 or more emergency). Shared by triage and the consultation."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from opd.core import events
from opd.core.audit import audit
from opd.core.models import User
from scheduling.models import Appointment

from .. import news2
from ..models import Consultation, TriageObservation

# The response levels in the order of urgency: "raised" means a later level than before.
LEVEL_ORDER = (news2.ROUTINE, news2.WARD, news2.URGENT_WARD, news2.URGENT, news2.EMERGENCY)
ALERT_LEVELS = (news2.URGENT, news2.EMERGENCY)


def response_level(scored: Consultation | TriageObservation | None) -> str | None:
    response = scored.news2_response if scored is not None else None
    return response.level if response is not None else None


def latest_triage(appointment_id: int) -> TriageObservation | None:
    return (
        TriageObservation.objects.filter(appointment_id=appointment_id)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-id")
        .first()
    )


def is_raised_to_alert(before: str | None, after: str | None) -> bool:
    if after not in ALERT_LEVELS:
        return False
    return before is None or LEVEL_ORDER.index(after) > LEVEL_ORDER.index(before)


def news2_alert(
    *,
    actor: User | None,
    appointment: Appointment,
    scored: Consultation | TriageObservation,
    before: str | None,
    source: str,
) -> bool:
    """If `scored` raised the response to urgent or emergency (from `before`), audit it and push the alert
    to the doctor's queue socket after commit. Call inside the write's transaction. True if it alerted."""
    response = scored.news2_response
    if response is None or not is_raised_to_alert(before, response.level):
        return False
    audit(
        actor=actor,
        action="news2.alert",
        obj=appointment,
        organization_id=appointment.organization_id,
        clinic_id=appointment.clinic_id,
        patient_id=appointment.patient_id,
        source=source,
        old_level=before or "",
        new_level=response.level,
        news2_total=scored.news2_total,
        news2_band=scored.news2_band,
    )
    shown = Appointment.objects.select_related("patient", "department").get(pk=appointment.pk)
    events.publish(
        events.QUEUE_ALERT,
        appointment_id=appointment.pk,
        doctor_id=appointment.doctor_id,
        clinic_id=appointment.clinic_id,
        alert=alert_payload(
            kind="news2",
            appointment=shown,
            level=response.level,
            title=response.title,
            action=response.action,
            news2_total=scored.news2_total,
            news2_band=scored.news2_band,
            source=source,
        ),
    )
    return True


def alert_payload(*, kind: str, appointment: Appointment, **extra: Any) -> dict[str, Any]:
    """What a queue socket is told (`patient` is dropped on the clinic's queue by scheduling.realtime)."""
    return {
        # One id per alert raised: the outbox may deliver its event twice, and a queue socket (and page)
        # that already showed this id does not show (nor beep) it again.
        "id": uuid.uuid4().hex,
        "kind": kind,
        "appointment_id": appointment.pk,
        "token_label": appointment.token_label,
        "patient": appointment.patient.full_name,
        "at": timezone.now().isoformat(),
        **extra,
    }
