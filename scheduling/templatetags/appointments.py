"""{% appointment_status appt %}: the appointment's state as a badge, in the one vocabulary
(scheduling.models.STATUS_LABELS) every page uses."""

from __future__ import annotations

from django import template

from opd.core.templatetags.opd import status_badge
from scheduling.models import STATUS_LABELS, Appointment

register = template.Library()


@register.simple_tag
def appointment_status(appointment: Appointment) -> str:
    return status_badge(appointment.display_state, appointment.status_label)


@register.simple_tag
def status_label(state: str) -> str:
    """The label of a state by name ("in_consultation"), for headings that stand for one state."""
    return STATUS_LABELS[state]
