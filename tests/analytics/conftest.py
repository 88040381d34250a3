"""Small fixed data whose statistics are worked out by hand in the tests.

Two days, Monday 12 and Tuesday 13 January 2026 (winter: London is UTC+0, Paris UTC+1), at the two
clinics of the "Riverside" organization from tests/conftest.py, plus a row at another organization that
must never be counted:

central (Europe/London), General medicine, doctor D1 (`doctor`)
  earlier: 2025-12-01  P1 completed                                   (P1's first visit)
  Mon 12:  S1 09:00 (2 seats)  A1 P1 completed  in 08:55 start 09:05 done 09:17  wait 10, consult 12
                               A2 P2 completed  in 09:00 start 09:20 done 09:30  wait 20, consult 10
           S2 09:15 (1 seat)   A3 P3 no-show
           S3 09:30 (1 seat)   A4 P4 cancelled, then A5 P5 completed in 09:25 start 09:55 done 10:09
                                                                    wait 30, consult 14
  Tue 13:  S4 10:00 (3 seats)  A6 P2 completed  in 09:58 start 10:03 done 10:11  wait 5, consult 8
                               A7 P6 booked;  A8 P7 checked in 10:05
           S5 10:15 (1 seat)   empty
north (Europe/Paris), Paediatrics, doctor D2
  Mon 12:  S6 00:30 local = Sun 11 23:30 UTC (1 seat)
                               A9 P8 completed  in 00:20 start 00:35 done 00:55  wait 15, consult 20
other organization: one completed appointment on Mon 12 (never counted).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

import pytest

from analytics import caching
from opd.core.models import Role
from scheduling.models import Appointment, AppointmentStatus, Slot
from tests.factories import (
    DepartmentFactory,
    DoctorFactory,
    PatientFactory,
    SlotFactory,
    UserFactory,
)

MON = dt.date(2026, 1, 12)
TUE = dt.date(2026, 1, 13)
EARLIER = dt.date(2025, 12, 1)


@pytest.fixture(autouse=True)
def _fresh_statistics_cache():
    # Row ids restart after a flush, so an entry cached by an earlier test could name the same clinic.
    caching.clear_all()
    yield
    caching.clear_all()


def at(day: dt.date, hhmm: str, zone: str) -> dt.datetime:
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)


@dataclass
class World:
    org: object
    clinic: object
    other_clinic: object
    department: object
    north_department: object
    doctor: object
    north_doctor: object
    patients: dict = field(default_factory=dict)
    appointments: dict = field(default_factory=dict)
    slots: dict = field(default_factory=dict)
    other_org_clinic: object = None


def make_slot(doctor, department, day: dt.date, hhmm: str, capacity: int) -> Slot:
    zone = department.clinic.time_zone
    start = at(day, hhmm, zone)
    return SlotFactory(
        doctor=doctor,
        department=department,
        start=start,
        end=start + dt.timedelta(minutes=15),
        date=day,
        capacity=capacity,
    )


def make_appointment(
    slot: Slot, patient, status: str, seat: int | None, times: dict | None = None
) -> Appointment:
    zone = slot.clinic.time_zone
    fields = {key: at(slot.date, value, zone) for key, value in (times or {}).items()}
    if status == AppointmentStatus.NO_SHOW:
        fields["no_show_at"] = slot.start + dt.timedelta(minutes=30)
    if status == AppointmentStatus.CANCELLED:
        fields["cancelled_at"] = slot.start - dt.timedelta(days=1)
    appointment = Appointment.objects.create(
        organization_id=slot.organization_id,
        clinic_id=slot.clinic_id,
        department_id=slot.department_id,
        doctor_id=slot.doctor_id,
        patient=patient,
        slot=slot,
        seat=seat,
        start=slot.start,
        end=slot.end,
        status=status,
        **fields,
    )
    if seat is not None:
        Slot.objects.filter(pk=slot.pk).update(
            booked_count=slot.appointments.filter(seat__isnull=False).count()
        )
    return appointment


def completed(slot, patient, seat, checked_in, started, done):
    return make_appointment(
        slot,
        patient,
        AppointmentStatus.COMPLETED,
        seat,
        {"checked_in_at": checked_in, "started_at": started, "completed_at": done},
    )


@pytest.fixture
def world(org, clinic, other_clinic, department, doctor, other_org_department, other_org_doctor) -> World:
    north_department = DepartmentFactory(clinic=other_clinic, name="Paediatrics", code="paed")
    north_doctor = DoctorFactory(
        user__username="dr-north", user__organization=org, departments=[north_department]
    )
    w = World(org, clinic, other_clinic, department, north_department, doctor, north_doctor)
    p = {n: PatientFactory(organization=org, first_name=f"P{n}") for n in range(1, 9)}
    w.patients = p

    earlier = make_slot(doctor, department, EARLIER, "11:00", 1)
    w.appointments["earlier"] = completed(earlier, p[1], 1, "10:55", "11:00", "11:10")

    s1 = make_slot(doctor, department, MON, "09:00", 2)
    s2 = make_slot(doctor, department, MON, "09:15", 1)
    s3 = make_slot(doctor, department, MON, "09:30", 1)
    a = w.appointments
    a[1] = completed(s1, p[1], 1, "08:55", "09:05", "09:17")
    a[2] = completed(s1, p[2], 2, "09:00", "09:20", "09:30")
    a[3] = make_appointment(s2, p[3], AppointmentStatus.NO_SHOW, 1)
    a[4] = make_appointment(s3, p[4], AppointmentStatus.CANCELLED, None)
    a[5] = completed(s3, p[5], 1, "09:25", "09:55", "10:09")

    s4 = make_slot(doctor, department, TUE, "10:00", 3)
    s5 = make_slot(doctor, department, TUE, "10:15", 1)
    a[6] = completed(s4, p[2], 1, "09:58", "10:03", "10:11")
    a[7] = make_appointment(s4, p[6], AppointmentStatus.BOOKED, 2)
    a[8] = make_appointment(s4, p[7], AppointmentStatus.CHECKED_IN, 3, {"checked_in_at": "10:05"})

    s6 = make_slot(north_doctor, north_department, MON, "00:30", 1)
    a[9] = completed(s6, p[8], 1, "00:20", "00:35", "00:55")
    w.slots = {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "s5": s5, "s6": s6}

    foreign_slot = make_slot(other_org_doctor, other_org_department, MON, "09:00", 1)
    foreign = PatientFactory(organization=other_org_department.clinic.organization)
    a["foreign"] = completed(foreign_slot, foreign, 1, "08:50", "09:10", "09:20")
    w.other_org_clinic = other_org_department.clinic
    return w


@pytest.fixture
def north_staff(org, other_clinic):
    return UserFactory(
        username="north-staff", role=Role.STAFF, organization=org, is_staff=True, clinics=[other_clinic]
    )


@pytest.fixture
def clinical(world, staff_user, north_staff, other_org_doctor):
    """Consultations with NEWS2 bands and care notes on the fixed days.

    NEWS2 (by day of the vitals): central Mon low, medium, high; Tue low; north Mon low-medium at 00:36
    Paris time (Sunday in UTC). Care notes: central Mon 2 observation (one written by doctor D1) and
    1 medication, Tue 1 hygiene; north Mon 1 incident at 00:10 Paris time; the other organization 1.
    """
    from consultations.models import CareNote, Consultation

    a = world.appointments

    def consultation(appointment, band: str, total: int, vitals_at: str):
        zone = appointment.clinic.time_zone
        day = appointment.slot.date
        return Consultation.objects.create(
            organization_id=appointment.organization_id,
            clinic_id=appointment.clinic_id,
            appointment=appointment,
            doctor_id=appointment.doctor_id,
            patient_id=appointment.patient_id,
            status="completed",
            started_at=appointment.started_at,
            completed_at=appointment.completed_at,
            vitals_recorded_at=at(day, vitals_at, zone),
            news2_total=total,
            news2_band=band,
        )

    consultation(a[1], "low", 1, "09:06")
    consultation(a[2], "medium", 5, "09:21")
    consultation(a[5], "high", 8, "09:56")
    consultation(a[6], "low", 0, "10:04")
    consultation(a[9], "low_medium", 3, "00:36")

    def note(clinic, patient, author, category, day, hhmm):
        return CareNote.objects.create(
            organization_id=clinic.organization_id,
            clinic=clinic,
            patient=patient,
            author=author,
            category=category,
            text=f"{category} note",
            date=day,
            created_at=at(day, hhmm, clinic.time_zone),
        )

    p = world.patients
    note(world.clinic, p[1], staff_user, "observation", MON, "09:10")
    note(world.clinic, p[2], world.doctor.user, "observation", MON, "09:25")
    note(world.clinic, p[5], staff_user, "medication", MON, "10:00")
    note(world.clinic, p[2], staff_user, "hygiene", TUE, "10:20")
    note(world.other_clinic, p[8], north_staff, "incident", MON, "00:10")
    foreign = a["foreign"]
    note(foreign.clinic, foreign.patient, other_org_doctor.user, "observation", MON, "09:30")
