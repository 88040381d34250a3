"""Events in, invoices out: a check-in or a completion raises the visit's invoice (whichever the clinic's
BillingSettings.invoice_at says), and a cancellation voids an invoice nothing was paid on.

scheduling publishes these events after its transaction commits and never imports billing; each handler
here runs its own transaction. A failure is logged by the dispatcher and never undoes the check-in.
"""

from __future__ import annotations

import logging
from typing import Any

from opd.core import events
from opd.core.errors import Conflict
from scheduling.models import Appointment

from .models import InvoiceAt, InvoiceStatus
from .selectors import billing_settings_for
from .services import invoice_raise, invoice_void

logger = logging.getLogger(__name__)

# The queue step (scheduling.services.queue's action names) that raises the invoice, per setting.
RAISED_ON = {"checked_in": InvoiceAt.CHECK_IN, "completed": InvoiceAt.COMPLETION}


def on_queue_changed(*, appointment_id: int, action: str = "", **_: Any) -> None:
    when = RAISED_ON.get(action)
    if when is None:
        return
    appointment = Appointment.objects.select_related("clinic").filter(pk=appointment_id).first()
    if appointment is None or billing_settings_for(appointment.clinic).invoice_at != when:
        return
    try:
        invoice_raise(actor=None, appointment=appointment)
    except Conflict as exc:
        # No fee covers the visit (a free clinic, a department without fees): nothing to invoice.
        logger.info("no invoice for appointment %s: %s", appointment_id, exc.message)


def on_appointment_cancelled(*, appointment_id: int, **_: Any) -> None:
    appointment = Appointment.objects.filter(pk=appointment_id).first()
    if appointment is None:
        return
    for invoice in appointment.invoices.filter(status__in=[InvoiceStatus.DRAFT, InvoiceStatus.ISSUED]):
        invoice_void(actor=None, invoice=invoice, reason="The appointment was cancelled.")


def subscribe() -> None:
    events.subscribe(events.QUEUE_CHANGED, on_queue_changed)
    events.subscribe(events.APPOINTMENT_CANCELLED, on_appointment_cancelled)
