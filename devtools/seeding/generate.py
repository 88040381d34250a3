"""The generator itself: structure (organizations to doctors), patients, then day by day the slots,
appointments, consultations and care notes, written in batches."""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from consultations.models import CareNote, Consultation
from opd.core.models import Clinic, Department, Membership, Organization, Role, User
from patients.models import MrnSequence, Patient, PatientStatus, Sex
from scheduling.models import Appointment, AppointmentStatus, ApprovalStatus, AvailabilityRule, Doctor, Slot

from . import rows
from .rows import (
    CANCEL_PER_SEAT,
    DEPARTMENTS,
    DOCTOR_PASSWORD,
    FIRST_NAMES,
    LAST_NAMES,
    LOAD,
    NURSES_PER_CLINIC,
    SESSIONS,
    SLOT_MINUTES,
    TIME_ZONES,
    PatientPicker,
    day_slot_times,
)
from .writer import Progress, Writer, naive_utc, next_id

UTC = dt.UTC


@dataclass(frozen=True)
class ScaleSpec:
    organizations: int = 1
    clinics: int = 2  # per organization
    doctors: int = 6  # per clinic
    patients: int = 5000  # per organization
    days: int = 90  # of history, ending on `until`
    seed: int = 1
    batch_size: int = 5000
    until: dt.date | None = None  # the last day of history (default: yesterday, UTC)
    prefix: str = "scale"


@dataclass
class SeedReport:
    organizations: int = 0
    clinics: int = 0
    departments: int = 0
    doctors: int = 0
    patients: int = 0
    slots: int = 0
    appointments: int = 0
    consultations: int = 0
    care_notes: int = 0
    seconds: float = 0.0
    counts_by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _ClinicPlan:
    clinic: Clinic
    departments: list[tuple[Department, int]]  # (department, seats per slot)
    doctors: list[tuple[Doctor, Department, int]]  # (doctor, department, seats per slot)
    nurse_user_ids: list[int] = field(default_factory=list)  # staff who write care notes


def seed_scale(spec: ScaleSpec, *, stdout=None, progress: bool = True) -> SeedReport:
    """Generate `spec`'s history. Returns what was written."""
    started = time.monotonic()
    out = stdout or sys.stdout
    rng = random.Random(spec.seed)  # noqa: S311 (demo data, not security)
    until = spec.until or (timezone.now().date() - dt.timedelta(days=1))
    first_day = until - dt.timedelta(days=spec.days - 1)
    report = SeedReport()
    if Organization.objects.filter(slug__startswith=f"{spec.prefix}-").exists():
        raise ValueError(
            f"Organizations with the prefix '{spec.prefix}-' already exist; seed an empty database or pass "
            "another prefix."
        )

    plans_by_org = _seed_structure(spec, rng, first_day, report)
    for org_index, (org, plans) in enumerate(plans_by_org):
        patient_ids = _seed_patients(spec, rng, org, plans, first_day, report, out, progress=progress)
        _seed_history(
            spec,
            rng,
            org,
            plans,
            patient_ids,
            first_day,
            until,
            report,
            out,
            progress=progress,
            label=f"org {org_index + 1}/{len(plans_by_org)}",
        )
    report.seconds = time.monotonic() - started
    return report


def _seed_structure(
    spec: ScaleSpec, rng: random.Random, first_day: dt.date, report: SeedReport
) -> list[tuple[Organization, list[_ClinicPlan]]]:
    out = []
    with transaction.atomic():
        for o in range(1, spec.organizations + 1):
            org = Organization.objects.create(
                name=f"Scale Health {o}" if spec.prefix == "scale" else f"{spec.prefix} {o}",
                slug=f"{spec.prefix}-{o}",
            )
            report.organizations += 1
            plans = []
            for c in range(1, spec.clinics + 1):
                tz = TIME_ZONES[(o + c - 2) % len(TIME_ZONES)]
                clinic = Clinic.objects.create(
                    organization=org,
                    name=f"{org.name} Clinic {c}",
                    code=f"c{c}",
                    time_zone=tz,
                    email=f"clinic{c}@{org.slug}.example.org",
                )
                report.clinics += 1
                departments = []
                for code, name, seats in DEPARTMENTS:
                    departments.append(
                        (Department.objects.create(clinic=clinic, code=code, name=name), seats)
                    )
                    report.departments += 1
                users = User.objects.bulk_create(
                    [
                        User(
                            username=f"{org.slug}-c{c}-dr{d}",
                            first_name=rng.choice(FIRST_NAMES),
                            last_name=rng.choice(LAST_NAMES),
                            email=f"dr{d}.c{c}@{org.slug}.example.org",
                            role=Role.DOCTOR,
                            organization=org,
                            password=DOCTOR_PASSWORD,
                        )
                        for d in range(1, spec.doctors + 1)
                    ]
                )
                users = list(User.objects.filter(username__startswith=f"{org.slug}-c{c}-dr").order_by("pk"))
                Membership.objects.bulk_create([Membership(user=u, clinic=clinic) for u in users])
                Doctor.objects.bulk_create(
                    [
                        Doctor(
                            user=u,
                            organization=org,
                            specialization=departments[i % len(departments)][0].name,
                            license_number=f"{org.slug.upper()}-C{c}-{i + 1:04d}",
                            approval_status=ApprovalStatus.APPROVED,
                            approved_at=timezone.now(),
                        )
                        for i, u in enumerate(users)
                    ]
                )
                doctors = list(Doctor.objects.filter(user__in=users).order_by("pk"))
                nurses = [
                    User(
                        username=f"{org.slug}-c{c}-nurse{n}",
                        first_name=rng.choice(FIRST_NAMES),
                        last_name=rng.choice(LAST_NAMES),
                        email=f"nurse{n}.c{c}@{org.slug}.example.org",
                        role=Role.STAFF,
                        organization=org,
                        password=DOCTOR_PASSWORD,
                    )
                    for n in range(1, NURSES_PER_CLINIC + 1)
                ]
                User.objects.bulk_create(nurses)
                nurses = list(
                    User.objects.filter(username__startswith=f"{org.slug}-c{c}-nurse").order_by("pk")
                )
                Membership.objects.bulk_create([Membership(user=u, clinic=clinic) for u in nurses])
                plan = _ClinicPlan(
                    clinic=clinic, departments=departments, doctors=[], nurse_user_ids=[u.pk for u in nurses]
                )
                links, rules = [], []
                for i, doctor in enumerate(doctors):
                    department, seats = departments[i % len(departments)]
                    plan.doctors.append((doctor, department, seats))
                    links.append(Doctor.departments.through(doctor_id=doctor.pk, department_id=department.pk))
                    for weekday, sessions in SESSIONS.items():
                        for start, end in sessions:
                            rules.append(
                                AvailabilityRule(
                                    doctor=doctor,
                                    department=department,
                                    weekday=weekday,
                                    start_time=start,
                                    end_time=end,
                                    slot_minutes=SLOT_MINUTES,
                                    capacity=seats,
                                    valid_from=first_day,
                                )
                            )
                Doctor.departments.through.objects.bulk_create(links)
                AvailabilityRule.objects.bulk_create(rules)
                report.doctors += len(doctors)
                plans.append(plan)
            out.append((org, plans))
    return out


def _seed_patients(
    spec: ScaleSpec,
    rng: random.Random,
    org: Organization,
    plans: list[_ClinicPlan],
    first_day: dt.date,
    report: SeedReport,
    out,
    *,
    progress: bool,
) -> list[int]:
    patient_id = next_id(Patient)
    registered = dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time(7), tzinfo=UTC)
    registered = naive_utc(registered)
    with Writer(spec.batch_size, Patient) as writer:
        bar = Progress(spec.patients, f"patients {org.slug}", stream=out) if progress else None
        ids = []
        for n in range(1, spec.patients + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            phone = f"+44 7700 {n:06d}"
            writer.add(
                Patient,
                {
                    "id": patient_id,
                    "organization_id": org.pk,
                    "registered_at_clinic_id": rng.choice(plans).clinic.pk,
                    "mrn": f"P{n:08d}",
                    "first_name": first,
                    "last_name": last,
                    "date_of_birth": dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(88 * 365)),
                    "sex": rng.choice((Sex.FEMALE, Sex.MALE)),
                    "phone": phone,
                    "email": f"{first.lower()}.{last.lower()}.{n}@{org.slug}.example.org",
                    "status": PatientStatus.ACTIVE,
                    "created_at": registered,
                    "updated_at": registered,
                },
            )
            ids.append(patient_id)
            patient_id += 1
            if bar and n % 1000 == 0:
                bar.update(n, f"{n:,}")
    if bar:
        bar.finish(f"{spec.patients:,}")
    # Later registrations continue the sequence instead of colliding with the generated MRNs.
    MrnSequence.objects.update_or_create(organization=org, defaults={"last_value": spec.patients})
    report.patients += spec.patients
    return ids


@dataclass
class _Ids:
    slot: int
    appointment: int


def _seed_history(
    spec: ScaleSpec,
    rng: random.Random,
    org: Organization,
    plans: list[_ClinicPlan],
    patient_ids: list[int],
    first_day: dt.date,
    until: dt.date,
    report: SeedReport,
    out,
    *,
    progress: bool,
    label: str,
) -> None:
    ids = _Ids(slot=next_id(Slot), appointment=next_id(Appointment))
    with Writer(spec.batch_size, Slot, Appointment, Consultation, CareNote) as writer:
        doctors_total = sum(len(p.doctors) for p in plans)
        seats_per_week = sum(
            seats * sum(len(SESSIONS.get(k, ())) for k in range(7)) * 16
            for p in plans
            for _, _, seats in p.doctors
        )
        expected_visits = int(seats_per_week * spec.days / 7 * 0.85)
        picker = PatientPicker(rng, patient_ids, expected_visits)
        bar = Progress(spec.days * doctors_total, f"history {label}", stream=out) if progress else None
        done = 0
        statuses = report.counts_by_status
        for k in range(spec.days):
            day = first_day + dt.timedelta(days=k)
            if day.weekday() not in SESSIONS:
                done += doctors_total
                continue
            # A slight winter peak (flu season in the north) on top of the weekday pattern.
            season = 1 + 0.05 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365)
            load = min(LOAD[day.weekday()] * season, 0.99)
            for plan in plans:
                clinic = plan.clinic
                times = day_slot_times(clinic.tz, day)
                tokens: dict[int, int] = defaultdict(int)
                for doctor, department, seats in plan.doctors:
                    common = {
                        "organization_id": org.pk,
                        "clinic_id": clinic.pk,
                        "department_id": department.pk,
                        "doctor_id": doctor.pk,
                    }
                    day_load = min(load * rng.gauss(1, 0.05), 0.99)
                    for start, end in times:
                        appointments = []
                        for seat in range(1, seats + 1):
                            if rng.random() < CANCEL_PER_SEAT:
                                appointments.append(rows.cancelled(rng, common, start, end, picker.pick()))
                            if rng.random() < day_load:
                                appt = rows.kept(rng, common, seat, start, end, picker.pick())
                                if appt["status"] == AppointmentStatus.COMPLETED:
                                    tokens[department.pk] += 1
                                    appt["token_number"], appt["token_date"] = tokens[department.pk], day
                                appointments.append(appt)
                        # The slot before its appointments: a batch flushed in between must find it.
                        writer.add(
                            Slot,
                            {
                                **common,
                                "id": ids.slot,
                                "date": day,
                                "start": start,
                                "end": end,
                                "capacity": seats,
                                "booked_count": sum(a["seat"] is not None for a in appointments),
                                "is_active": True,
                                "created_at": start - dt.timedelta(days=28),
                            },
                        )
                        for appt in appointments:
                            appt["id"], appt["slot_id"] = ids.appointment, ids.slot
                            ids.appointment += 1
                            writer.add(Appointment, appt)
                            statuses[appt["status"]] += 1
                            if appt["status"] == AppointmentStatus.COMPLETED:
                                writer.add(Consultation, rows.consultation(rng, appt))
                                for note in rows.care_notes(
                                    rng, appt, day, plan.nurse_user_ids, doctor.user_id
                                ):
                                    writer.add(CareNote, note)
                        ids.slot += 1
                    done += 1
                if bar:
                    bar.update(done, _counts(writer))
    report.slots += writer.count(Slot)
    report.appointments += writer.count(Appointment)
    report.consultations += writer.count(Consultation)
    report.care_notes += writer.count(CareNote)
    if bar:
        bar.finish(_counts(writer))


def _counts(writer: Writer) -> str:
    return (
        f"{writer.count(Slot):,} slots {writer.count(Appointment):,} appointments "
        f"{writer.count(CareNote):,} care notes"
    )


def constraint_report(organization_ids: list[int] | None = None) -> dict[str, int]:
    """Counts that must be zero in consistent data (used by tests and the benchmark)."""
    from django.db.models import Count, F, Q

    slots = Slot.objects.all()
    appts = Appointment.objects.all()
    if organization_ids is not None:
        slots = slots.filter(organization_id__in=organization_ids)
        appts = appts.filter(organization_id__in=organization_ids)
    overbooked = slots.filter(booked_count__gt=F("capacity")).count()
    mismatched = (
        slots.annotate(held=Count("appointments", filter=Q(appointments__seat__isnull=False)))
        .exclude(held=F("booked_count"))
        .count()
    )
    bad_times = appts.filter(
        Q(status=AppointmentStatus.COMPLETED)
        & (
            Q(checked_in_at__isnull=True)
            | Q(started_at__lt=F("checked_in_at"))
            | Q(completed_at__lte=F("started_at"))
        )
    ).count()
    return {
        "overbooked_slots": overbooked,
        "slots_with_wrong_booked_count": mismatched,
        "bad_times": bad_times,
    }
