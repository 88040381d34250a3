"""The patient portal's pages: sign up, find and book, my appointments, my record, my profile.

Every page but sign-up is for signed-in patients (staff and doctors are sent to their own pages), and
every object is looked up through the patient's own scope, so another patient's id answers 404.
Writes are POST-only, protected by CSRF, and go through the services every other door uses; booking,
cancelling and rescheduling run once per form token (common.run_once), so a double-submitted form
has one effect and both submits land on the same page.
"""

from .account import (
    after_login,
    index,
    profile,
    signup,
    signup_at_clinic,
    verify_email,
    verify_email_resend,
)
from .appointments import (
    appointment_calendar,
    appointment_detail,
    appointments,
    cancel,
    confirmation,
    reschedule,
)
from .bills import bills
from .booking import book, book_first_available, find
from .inbox import inbox, mark_all_read, mark_read
from .record import accesses, record

__all__ = [
    "accesses",
    "after_login",
    "appointment_calendar",
    "appointment_detail",
    "appointments",
    "bills",
    "book",
    "book_first_available",
    "cancel",
    "confirmation",
    "find",
    "inbox",
    "index",
    "mark_all_read",
    "mark_read",
    "profile",
    "record",
    "reschedule",
    "signup",
    "signup_at_clinic",
    "verify_email",
    "verify_email_resend",
]
