"""Break the glass: a doctor without a care relationship states why they open a patient's record."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from opd.core.audit import record_access
from opd.core.errors import ValidationFailed
from opd.core.models import AccessGrant, User
from opd.core.selectors import BREAK_GLASS


def access_break_glass(
    *, actor: User, patient_id: int, organization_id: int, clinic_id: int | None, reason: str
) -> AccessGrant:
    """Record the reason (an access-log row `record.break_glass`, flagged for an administrator's
    review) and open the patient's record to the actor for OPD_BREAK_GLASS_MINUTES."""
    reason = " ".join(reason.split())
    minimum = settings.OPD_BREAK_GLASS_REASON_MIN_LENGTH
    if len(reason) < minimum:
        raise ValidationFailed(
            f"reason: say why you open this record (at least {minimum} characters).",
            fields={"reason": f"At least {minimum} characters."},
        )
    reason = reason[:1000]
    grant = AccessGrant.objects.create(
        organization_id=organization_id,
        user=actor,
        patient_id=patient_id,
        reason=reason,
        expires_at=timezone.now() + dt.timedelta(minutes=settings.OPD_BREAK_GLASS_MINUTES),
    )
    record_access(
        actor=actor,
        action=BREAK_GLASS,
        obj=("patients.patient", patient_id),
        organization_id=organization_id,
        clinic_id=clinic_id,
        patient_id=patient_id,
        reason=reason,
        minutes=settings.OPD_BREAK_GLASS_MINUTES,
    )
    return grant
