"""The access log of a doctor's queue: it shows patients' names, so whoever is shown it is logged.

One access row per snapshot shown (the websocket's snapshot on connect and on resync, the HTTP snapshot,
the dashboard page and its fragments), not one per live event: an event carries one patient the
snapshot's reader already had in front of them, and logging each would write a row per change per
watcher. The row names the queue (`scheduling.queue`, "doctor:7") and lists the patients and
appointments shown in `data`; its patient column stays empty (it is a view of a queue, not the opening of
one patient's record, so it is not on the patient's "who opened my record" page).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opd.core.audit import record_access
from opd.core.models import User

from .models import Appointment, Doctor
from .selectors import DOCTOR_QUEUE, queue_name

QUEUE_VIEWED = "queue.viewed"


def _entries(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("in_consultation", "called", "waiting", "expected", "done"):
        out += snapshot.get(key) or []
    return out


def log_queue_view(
    user: User,
    doctor: Doctor,
    *,
    appointments: Iterable[Appointment] = (),
    snapshot: dict[str, Any] | None = None,
    via: str,
) -> None:
    """Log that the user was shown the doctor's queue (the patients in `appointments` or `snapshot`)."""
    pairs: dict[int, int] = {a.pk: a.patient_id for a in appointments}
    for entry in _entries(snapshot or {}):
        if entry.get("patient"):
            pairs[entry["appointment_id"]] = entry["patient"]["id"]
    record_access(
        actor=user,
        action=QUEUE_VIEWED,
        obj=("scheduling.queue", queue_name(DOCTOR_QUEUE, doctor.pk)),
        organization_id=doctor.organization_id,
        appointments=sorted(pairs),
        patients=sorted(set(pairs.values())),
        via=via,
    )
