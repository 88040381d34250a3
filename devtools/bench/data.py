"""The bench database: schema (with the indexes asked of scheduling), seeded data, users, fresh slots
to book, and the check that nothing was overbooked. Functions run after django.setup()."""

from __future__ import annotations

import datetime as dt
import time

# Indexes asked of the scheduling app (analytics does not own its tables). Until their migration lands
# the bench creates them, under the same names, so the figures are those of the intended schema; when the
# migration that adds them is pending, the bench's copies are dropped first so it applies cleanly.
RECOMMENDED_INDEXES = {
    # First visits per patient: a loose index scan for MIN(start) of completed visits.
    ("scheduling_appointment", "scheduling_appt_patient_status"): ("patient_id", "status", "start"),
    # Slot listing of a clinic's day (the API filters on the local date): a range of a few hundred rows
    # instead of every slot of the clinic.
    ("scheduling_slot", "scheduling_slot_clinic_date"): ("clinic_id", "date", "start"),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def existing_indexes(table: str) -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def _pending_indexes() -> set[str]:
    """Index names that unapplied migrations will add."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.operations import AddIndex

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return {op.index.name for migration, _ in plan for op in migration.operations if isinstance(op, AddIndex)}


def ensure_schema_and_data(reseed: bool, spec: dict, *, recommended: bool) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from consultations.models import CareNote
    from devtools.seeding import ScaleSpec, seed_scale
    from opd.core.models import Organization
    from scheduling.models import Appointment

    pending = _pending_indexes()
    with connection.cursor() as cursor:
        for (table, name), _columns in RECOMMENDED_INDEXES.items():
            # The migration that adds it has landed: let it create the index the bench made before.
            if name in pending and table in connection.introspection.table_names(cursor):
                cursor.execute(f"DROP INDEX IF EXISTS {name} ON {table}")
    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    org = Organization.objects.filter(slug=f"{spec['prefix']}-1").first()
    if org is not None and reseed:
        raise SystemExit("--reseed needs an empty bench database: drop it first (manage.py bench --drop).")
    seed_seconds = None
    if org is None:
        log("seeding (once per bench database; a few minutes)")
        report = seed_scale(ScaleSpec(**spec))
        seed_seconds = round(report.seconds, 1)
        org = Organization.objects.get(slug=f"{spec['prefix']}-1")
    created = []
    with connection.cursor() as cursor:
        for (table, name), columns in RECOMMENDED_INDEXES.items():
            if recommended and name not in existing_indexes(table):
                log(f"creating index {name} on {table} ({', '.join(columns)}), pending its migration")
                cursor.execute(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")
                created.append(name)
        cursor.execute("ANALYZE TABLE scheduling_appointment, scheduling_slot, consultations_carenote")
        cursor.fetchall()
    # What beat's analytics.refresh_summaries does every ten minutes: after seeding, every closed day;
    # on a later run, the days that closed since.
    from analytics.summaries import daily_summaries_refresh_due

    log("storing the daily figures of closed days (beat's refresh)")
    started = time.perf_counter()
    summary_days = daily_summaries_refresh_due()
    summaries_seconds = round(time.perf_counter() - started, 1)
    log(f"stored {summary_days:,} clinic-days in {summaries_seconds} s")
    counts = {
        "appointments": Appointment.objects.filter(organization=org).count(),
        "care_notes": CareNote.objects.filter(organization=org).count(),
    }
    log(f"data: {counts['appointments']:,} appointments, {counts['care_notes']:,} care notes")
    return {
        "organization_id": org.pk,
        "seed_seconds": seed_seconds,
        "summary_days": summary_days,
        "summaries_seconds": summaries_seconds,
        "indexes_created_by_bench": created,
        **counts,
    }


def bench_users(org_id: int) -> dict:
    from opd.core.models import Clinic, Membership, Role, User
    from opd.core.services import token_issue

    clinics = list(Clinic.objects.filter(organization_id=org_id).order_by("pk"))
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"role": Role.ADMIN, "organization_id": org_id, "is_staff": True}
    )
    staff, _ = User.objects.get_or_create(
        username="bench-staff", defaults={"role": Role.STAFF, "organization_id": org_id, "is_staff": True}
    )
    for clinic in clinics:
        Membership.objects.get_or_create(user=staff, clinic=clinic)
    # A patient of the organization with a portal account: slot listings are measured as a patient
    # looking for a time, which is who lists slots most.
    from patients.models import Patient

    patient_user, _ = User.objects.get_or_create(
        username="bench-patient",
        defaults={
            "role": Role.PATIENT,
            "organization_id": org_id,
            "email_verified_at": dt.datetime.now(dt.UTC),
        },
    )
    if not Patient.objects.filter(user=patient_user).exists():
        unlinked = Patient.objects.filter(organization_id=org_id, user__isnull=True).order_by("-pk")
        Patient.objects.filter(pk=unlinked.values_list("pk", flat=True)[:1].get()).update(user=patient_user)
    return {
        # A new token per run (each lives OPD_TOKEN_TTL_HOURS), as a client signing in with its password
        # and a second-factor code would get (the benchmark measures with the requirement on).
        "admin": token_issue(user=admin, name="bench", second_factor=True)[1],
        "staff": token_issue(user=staff, name="bench", second_factor=True)[1],
        "patient": token_issue(user=patient_user, name="bench", second_factor=True)[1],
        "clinic_ids": [c.pk for c in clinics],
    }


def history_range(org_id: int) -> tuple[dt.date, dt.date]:
    from django.db.models import Max, Min

    from scheduling.models import Slot

    bounds = Slot.objects.filter(organization_id=org_id, date__lt=dt.date.today()).aggregate(  # noqa: DTZ011
        first=Min("date"), last=Max("date")
    )
    return bounds["first"], bounds["last"]


def contention_slots(org_id: int, clinic_id: int, *, per_doctor: int, capacity: int) -> list[int]:
    """Future slots for a booking run, in one clinic, on a day no earlier run used (runs leave their
    bookings in place: the bench database is the benchmark's own)."""
    from django.db.models import Max
    from django.utils import timezone

    from scheduling.models import Doctor, Slot

    doctors = list(
        Doctor.objects.filter(organization_id=org_id, departments__clinic_id=clinic_id)
        .distinct()
        .order_by("pk")
        .prefetch_related("departments__clinic")
    )
    tz = doctors[0].departments.all()[0].clinic.tz
    latest = Slot.objects.filter(organization_id=org_id, clinic_id=clinic_id).aggregate(d=Max("date"))["d"]
    day = max(timezone.localdate(timezone=tz) + dt.timedelta(days=3), latest + dt.timedelta(days=1))
    rows = []
    for doctor in doctors:
        department = doctor.departments.all()[0]
        for n in range(per_doctor):
            start = dt.datetime.combine(day, dt.time(7), tzinfo=tz) + dt.timedelta(minutes=15 * n)
            rows.append(
                Slot(
                    organization_id=org_id,
                    clinic_id=clinic_id,
                    department=department,
                    doctor=doctor,
                    date=day,
                    start=start,
                    end=start + dt.timedelta(minutes=15),
                    capacity=capacity,
                )
            )
    Slot.objects.bulk_create(rows)
    return sorted(Slot.objects.filter(clinic_id=clinic_id, date=day).values_list("pk", flat=True))


def overbooking_proof(slot_ids: list[int]) -> dict:
    from django.db import connection
    from django.db.models import F

    from scheduling.models import Slot

    ids = ", ".join(str(int(i)) for i in slot_ids)
    with connection.cursor() as cursor:
        # Seats held per slot, counted from the appointments themselves.
        cursor.execute(
            f"""
            SELECT COUNT(*),
                   SUM(s.booked_count > s.capacity),
                   SUM(s.booked_count <> COALESCE(a.held, 0)),
                   SUM(COALESCE(a.held, 0) > s.capacity),
                   SUM(COALESCE(a.held, 0)),
                   SUM(COALESCE(a.duplicate_seats, 0))
            FROM scheduling_slot s
            LEFT JOIN (
                SELECT slot_id, COUNT(seat) AS held, COUNT(seat) - COUNT(DISTINCT seat) AS duplicate_seats
                FROM scheduling_appointment WHERE slot_id IN ({ids}) GROUP BY slot_id
            ) a ON a.slot_id = s.id
            WHERE s.id IN ({ids})
            """  # noqa: S608 (integers)
        )
        slots, over, mismatched, held_over, held, duplicates = cursor.fetchone()
    anywhere = Slot.objects.filter(booked_count__gt=F("capacity")).count()
    return {
        "slots": slots,
        "seats_held": int(held or 0),
        "slots_booked_count_over_capacity": int(over or 0),
        "slots_booked_count_not_equal_seats_held": int(mismatched or 0),
        "slots_seats_held_over_capacity": int(held_over or 0),
        "duplicate_seats": int(duplicates or 0),
        "overbooked_slots_in_database": anywhere,
    }
