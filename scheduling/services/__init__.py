"""Every write of the scheduling app. Doors (API, admin, portal, tasks, commands) call these only."""

from .availability import (
    availability_exception_create,
    availability_exception_delete,
    availability_rule_create,
    availability_rule_delete,
    availability_rule_update,
    doctor_set_approval,
)
from .booking import (
    appointment_book,
    appointment_book_first_available,
    appointment_cancel,
    appointment_reschedule,
)
from .doctors import doctor_create, doctor_update
from .no_shows import appointments_sweep_no_shows
from .queue import (
    COMPLETE,
    NO_SHOW,
    START,
    Transition,
    appointment_check_in,
    appointment_complete,
    appointment_mark_no_show,
    appointment_recall,
    appointment_set_priority,
    appointment_skip,
    appointment_start,
    appointment_transition,
    appointment_undo_no_show,
    appointment_undo_skip,
    queue_call_next,
    skip_undo_deadline,
    undo_deadline,
)
from .slots import slots_generate, slots_replan_for_time_zone

__all__ = [
    "COMPLETE",
    "NO_SHOW",
    "START",
    "Transition",
    "appointment_book",
    "appointment_book_first_available",
    "appointment_cancel",
    "appointment_check_in",
    "appointment_complete",
    "appointment_mark_no_show",
    "appointment_recall",
    "appointment_reschedule",
    "appointment_set_priority",
    "appointment_skip",
    "appointment_start",
    "appointment_transition",
    "appointment_undo_no_show",
    "appointment_undo_skip",
    "appointments_sweep_no_shows",
    "availability_exception_create",
    "availability_exception_delete",
    "availability_rule_create",
    "availability_rule_delete",
    "availability_rule_update",
    "doctor_create",
    "doctor_set_approval",
    "doctor_update",
    "queue_call_next",
    "skip_undo_deadline",
    "slots_generate",
    "slots_replan_for_time_zone",
    "undo_deadline",
]
