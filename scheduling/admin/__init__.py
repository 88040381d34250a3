"""Doctors, availability, slots and appointments in the admin. Every write goes through a service.

doctors.py: doctors (approval, room) and their availability; appointments.py: slots (read-only) and
appointments (book, cancel, check in, priority). Permissions and scoping: see opd.core.admin_mixins.
"""

from . import appointments, doctors
from .doctors import scope_doctors, scope_exceptions

__all__ = ["appointments", "doctors", "scope_doctors", "scope_exceptions"]
