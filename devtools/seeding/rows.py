"""What the generated history looks like: the distributions, and one row (a dict of column values) at a
time for appointments, consultations and care notes. Timestamps are naive UTC (see writer.naive_utc)."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from consultations import news2
from consultations.models import CareCategory, ConsultationStatus
from scheduling.models import AppointmentStatus, BookingChannel

from .writer import naive_utc

UTC = dt.UTC
TIME_ZONES = (
    "Europe/London",
    "Asia/Kolkata",
    "America/New_York",
    "Africa/Nairobi",
    "Europe/Berlin",
    "Australia/Sydney",
)
# code, name, seats per slot (general medicine double-books: a nurse sees the second patient).
DEPARTMENTS = (("gen", "General medicine", 2), ("paed", "Paediatrics", 1), ("cardio", "Cardiology", 1))
SLOT_MINUTES = 15
# Weekly sessions, clinic local time, by weekday (Monday 0). Sunday closed.
SESSIONS = {
    **{day: ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17))) for day in range(5)},
    5: ((dt.time(9), dt.time(13)),),
}
# Probability that a seat is taken, by weekday: Monday busiest, tailing off to Saturday.
LOAD = {0: 0.93, 1: 0.86, 2: 0.82, 3: 0.80, 4: 0.74, 5: 0.62}
NO_SHOW_RATE = 0.08
# Chance that a seat also carries a cancelled booking (before being rebooked, or left empty): ~10%.
CANCEL_PER_SEAT = 0.092
PRIORITY_RATE = 0.03
CHANNELS = ((BookingChannel.PORTAL, 0.45), (BookingChannel.ADMIN, 0.45), (BookingChannel.API, 0.10))
REASONS = (
    "Follow-up",
    "Cough and fever",
    "Blood pressure review",
    "Diabetes review",
    "Back pain",
    "Headache",
    "Skin rash",
    "Chest pain",
    "Vaccination",
    "Medication review",
    "",
)
CANCEL_REASONS = ("Patient request", "Feeling better", "Clash with work", "Clinic rescheduled", "")
FIRST_NAMES = (  # noqa: SIM905 (a list of names reads better as one string)
    "Amelia Isla Ava Mia Freya Grace Lily Evie Sophie Poppy Ananya Diya Ishita Kavya Riya Meera Wanjiru "
    "Amina Zawadi Emma Olivia Sofia Hannah Lea Chloe Oliver George Harry Noah Jack Leo Arthur Oscar Aarav "
    "Vihaan Arjun Rohan Kunal Rahul Juma Baraka Liam Lucas Ethan Felix Jonas Elias Mateo"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Smith Jones Taylor Brown Wilson Davies Evans Walker Wright Khan Das Ghosh Chatterjee Mukherjee Bose Roy "
    "Dutta Mitra Saha Basu Otieno Kamau Mwangi Njoroge Johnson Williams Garcia Miller Martin Schmidt "
    "Schneider Fischer Weber Meyer Wagner Becker Nguyen Tran Lee Patel"
).split()
# Care notes per completed visit: 0, 1, 2 or 3 (mean 1.2), and what they are about.
CARE_NOTES_PER_VISIT = ((0, 0.20), (1, 0.45), (2, 0.30), (3, 0.05))
CARE_CATEGORIES = (
    (CareCategory.OBSERVATION, 0.40),
    (CareCategory.MEDICATION, 0.25),
    (CareCategory.HYGIENE, 0.10),
    (CareCategory.NUTRITION, 0.10),
    (CareCategory.INCIDENT, 0.03),
    (CareCategory.OTHER, 0.12),
)
CARE_TEXTS = {
    CareCategory.OBSERVATION: ("Observations taken, patient comfortable.", "Vitals repeated after rest."),
    CareCategory.MEDICATION: ("Medication given as prescribed.", "Inhaler technique reviewed."),
    CareCategory.HYGIENE: ("Wound dressing changed.", "Hand hygiene advice given."),
    CareCategory.NUTRITION: ("Dietary advice given.", "Weight recorded, diet discussed."),
    CareCategory.INCIDENT: ("Patient felt faint in the waiting room; observed.", "Minor fall, no injury."),
    CareCategory.OTHER: ("Follow-up booked at reception.", "Transport arranged."),
}
VITALS_RECORDED = 0.85  # share of consultations with a full set of vitals (and so a NEWS2)
NURSES_PER_CLINIC = 2
DOCTOR_PASSWORD = "!"  # an unusable password hash: generated doctors cannot sign in  # noqa: S105


def lognormal_minutes(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(max(rng.lognormvariate(math.log(median), sigma), low), high)


def weighted(rng: random.Random, choices) -> str:
    r = rng.random()
    for value, weight in choices:
        r -= weight
        if r < 0:
            return value
    return choices[-1][0]


class PatientPicker:
    """Who comes: a new patient now and then (so first visits spread over the period), else someone who
    has been before, favouring recent and frequent visitors."""

    def __init__(self, rng: random.Random, patient_ids: list[int], expected_visits: int):
        self.rng = rng
        self.ids = patient_ids
        self.seen: list[int] = []
        self.expected_left = max(expected_visits, 1)

    def pick(self) -> int:
        unseen = len(self.ids) - len(self.seen)
        p_new = unseen / self.expected_left if self.seen else 1.0
        self.expected_left = max(self.expected_left - 1, 1)
        if unseen and self.rng.random() < max(p_new, 0.02):
            pid = self.ids[len(self.seen)]
            self.seen.append(pid)
            return pid
        # Recent visitors are likelier to return (a follow-up): the triangular draw leans to the end.
        index = int(self.rng.triangular(0, len(self.seen), len(self.seen)))
        return self.seen[min(index, len(self.seen) - 1)]


def day_slot_times(tz: ZoneInfo, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """The day's slot (start, end) pairs as naive UTC, from the sessions in clinic local time."""
    times = []
    step = dt.timedelta(minutes=SLOT_MINUTES)
    for start, end in SESSIONS.get(day.weekday(), ()):
        at = dt.datetime.combine(day, start, tzinfo=tz)
        stop = dt.datetime.combine(day, end, tzinfo=tz)
        while at < stop:
            times.append((naive_utc(at), naive_utc(at + step)))
            at += step
    return times


def booking(rng: random.Random, common: dict, start: dt.datetime, end: dt.datetime, patient_id: int) -> dict:
    lead = dt.timedelta(hours=min(1 + rng.expovariate(1 / (24 * 7)), 24 * 60))
    return {
        **common,
        "patient_id": patient_id,
        "start": start,
        "end": end,
        "reason": rng.choice(REASONS),
        "channel": weighted(rng, CHANNELS),
        "booked_at": (start - lead).replace(microsecond=0),
    }


def cancelled(rng: random.Random, common: dict, start, end, patient_id: int) -> dict:
    row = booking(rng, common, start, end, patient_id)
    window = (start - row["booked_at"]).total_seconds()
    cancelled_at = row["booked_at"] + dt.timedelta(seconds=int(rng.random() * window))
    row.update(
        seat=None,
        status=AppointmentStatus.CANCELLED,
        cancelled_at=cancelled_at,
        cancellation_reason=rng.choice(CANCEL_REASONS),
        updated_at=cancelled_at,
    )
    return row


def kept(rng: random.Random, common: dict, seat: int, start, end, patient_id: int) -> dict:
    row = booking(rng, common, start, end, patient_id)
    row["seat"] = seat
    if rng.random() < NO_SHOW_RATE:
        no_show_at = start + dt.timedelta(minutes=30)
        row.update(status=AppointmentStatus.NO_SHOW, no_show_at=no_show_at, updated_at=no_show_at)
        return row
    # Arrival around the booked time (early more often than late), a wait for the doctor, then the
    # consultation; all in whole seconds.
    arrived = start + dt.timedelta(seconds=int(rng.gauss(-8, 7) * 60))
    wait = lognormal_minutes(rng, 9, 0.6, 0.5, 120)
    started = max(arrived, start - dt.timedelta(minutes=5)) + dt.timedelta(seconds=int(wait * 60))
    completed = started + dt.timedelta(seconds=int(lognormal_minutes(rng, 12, 0.35, 3, 60) * 60))
    priority = rng.random() < PRIORITY_RATE
    row.update(
        status=AppointmentStatus.COMPLETED,
        checked_in_at=arrived,
        called_at=started,
        started_at=started,
        completed_at=completed,
        is_priority=priority,
        priority_reason="NEWS2 medium" if priority else "",
        updated_at=completed,
    )
    return row


def vitals(rng: random.Random) -> dict:
    """A plausible adult outpatient's vitals; a few are unwell (fever, fast breathing, low saturation)."""
    unwell = rng.random() < 0.06
    systolic = int(min(max(rng.gauss(128, 18), 85), 210))
    vitals = {
        "respiratory_rate": int(min(max(rng.gauss(22 if unwell else 16, 2.5), 8), 35)),
        "spo2": int(min(max(rng.gauss(93 if unwell else 97.5, 1.5), 84), 100)),
        "on_supplemental_oxygen": rng.random() < (0.08 if unwell else 0.01),
        "systolic_bp": systolic,
        "diastolic_bp": int(min(systolic * rng.uniform(0.55, 0.7), systolic - 10)),
        "pulse": int(min(max(rng.gauss(100 if unwell else 78, 12), 40), 160)),
        "consciousness": "A" if rng.random() > (0.05 if unwell else 0.002) else "C",
        "temperature": Decimal(f"{min(max(rng.gauss(38.4 if unwell else 36.8, 0.4), 35.0), 41.0):.1f}"),
        "weight_kg": Decimal(f"{min(max(rng.gauss(74, 15), 35), 180):.2f}"),
        "height_cm": Decimal(f"{min(max(rng.gauss(168, 10), 140), 205):.1f}"),
    }
    score = news2.score(
        news2.Observations(
            respiratory_rate=vitals["respiratory_rate"],
            spo2=vitals["spo2"],
            on_supplemental_oxygen=vitals["on_supplemental_oxygen"],
            systolic_bp=vitals["systolic_bp"],
            pulse=vitals["pulse"],
            consciousness=vitals["consciousness"],
            temperature=vitals["temperature"],
        )
    )
    for name, value in score.sub_scores.items():
        vitals[f"news2_{name}"] = value
    vitals.update(news2_spo2_scale=score.spo2_scale, news2_total=score.total, news2_band=score.band)
    return vitals


def consultation(rng: random.Random, appt: dict) -> dict:
    row = {
        "organization_id": appt["organization_id"],
        "clinic_id": appt["clinic_id"],
        "appointment_id": appt["id"],
        "doctor_id": appt["doctor_id"],
        "patient_id": appt["patient_id"],
        "status": ConsultationStatus.COMPLETED,
        "started_at": appt["started_at"],
        "completed_at": appt["completed_at"],
        "chief_complaint": appt["reason"],
        "created_at": appt["started_at"],
        "updated_at": appt["completed_at"],
    }
    if rng.random() < VITALS_RECORDED:
        row.update(vitals(rng), vitals_recorded_at=appt["started_at"] + dt.timedelta(minutes=2))
    return row


def care_notes(rng: random.Random, appt: dict, day: dt.date, nurse_user_ids: list[int], doctor_user_id: int):
    count = int(weighted(rng, CARE_NOTES_PER_VISIT))
    for _ in range(count):
        category = weighted(rng, CARE_CATEGORIES)
        written = appt["completed_at"] + dt.timedelta(seconds=rng.randrange(60, 3600))
        yield {
            "organization_id": appt["organization_id"],
            "clinic_id": appt["clinic_id"],
            "patient_id": appt["patient_id"],
            "author_id": doctor_user_id if rng.random() < 0.1 else rng.choice(nurse_user_ids),
            "category": category,
            "text": rng.choice(CARE_TEXTS[category]),
            # The visit's clinic-local day (a note written just after midnight still belongs to it).
            "date": day,
            "created_at": written,
            "updated_at": written,
        }
