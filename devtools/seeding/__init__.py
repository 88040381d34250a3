"""Years of a realistic clinic's history, generated in bulk: organizations, clinics, departments, doctors
(with weekly rules), patients, slots and appointments.

This is generated *history*, not bookings: rows are written with bulk inserts that bypass the booking
service on purpose (a million appointments through `appointment_book` would take hours). What the service
and the database guarantee still holds by construction: every non-cancelled appointment holds a seat
(unique per slot, 1..capacity), cancelled ones hold none, `booked_count` equals the seats held, timestamps
agree with the status (checked in -> started -> completed, no-show, cancelled before the start), tokens are
unique per department and day. Run it on a database nobody else is writing to: slot and patient ids are
assigned here (from the current maximum) so appointments can refer to them without reading them back.

Deterministic: the same options and `seed` (and `until`) give the same rows. Distributions:
Monday busiest, Saturday a morning, Sunday closed; a slight winter peak; ~8% no-shows and ~10% cancelled
bookings; waits (check-in to start) and consultation lengths log-normal (median ~12 minutes); patients come
back (most bookings are by returning patients, new ones arrive steadily over the period).
"""

from .generate import ScaleSpec, SeedReport, constraint_report, seed_scale

__all__ = ["ScaleSpec", "SeedReport", "constraint_report", "seed_scale"]
