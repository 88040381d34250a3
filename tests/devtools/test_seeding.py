"""The scale generator: deterministic, realistic in shape, and consistent with every constraint."""

from __future__ import annotations

import datetime as dt
import io
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, reset_queries
from django.db.models import Count

from consultations.models import CareNote, Consultation
from devtools.seeding import ScaleSpec, constraint_report, seed_scale
from devtools.seeding.writer import Table, Writer
from opd.core.models import Organization
from patients.models import MrnSequence, Patient, Sex
from scheduling.models import Appointment, AppointmentStatus, Slot

pytestmark = pytest.mark.django_db

UNTIL = dt.date(2026, 3, 15)  # a Sunday; the span crosses London's and New York's spring DST changes
SMALL = {"organizations": 1, "clinics": 3, "doctors": 2, "patients": 60, "days": 21, "until": UNTIL}
TINY = {"organizations": 1, "clinics": 1, "doctors": 1, "until": UNTIL}  # rows for the writer tests


def fingerprint(prefix: str) -> dict:
    """What a seed produced, without the ids and names that differ between two runs."""
    org = Organization.objects.get(slug=f"{prefix}-1")
    appointments = Appointment.objects.filter(organization=org).order_by("id")
    first = [
        (a.start, a.status, a.seat, a.checked_in_at, a.started_at, a.completed_at, a.patient.mrn)
        for a in appointments[:25]
    ]
    return {
        "statuses": dict(appointments.values_list("status").annotate(n=Count("id")).order_by("status")),
        "slots": Slot.objects.filter(organization=org).count(),
        "consultations": Consultation.objects.filter(organization=org).count(),
        "care_notes": CareNote.objects.filter(organization=org).count(),
        "patients": list(
            Patient.objects.filter(organization=org)
            .order_by("mrn")
            .values_list("first_name", "last_name")[:10]
        ),
        "first": first,
        "zones": list(org.clinics.order_by("code").values_list("time_zone", flat=True)),
    }


def test_the_same_seed_gives_the_same_data():
    seed_scale(ScaleSpec(**SMALL, seed=11, prefix="one"), progress=False)
    seed_scale(ScaleSpec(**SMALL, seed=11, prefix="two"), progress=False)
    seed_scale(ScaleSpec(**SMALL, seed=12, prefix="three"), progress=False)

    assert fingerprint("one") == fingerprint("two")
    assert fingerprint("one")["first"] != fingerprint("three")["first"]


def test_the_data_keeps_every_constraint():
    report = seed_scale(ScaleSpec(**SMALL, seed=3), progress=False)

    assert constraint_report() == {"overbooked_slots": 0, "slots_with_wrong_booked_count": 0, "bad_times": 0}
    appointments = Appointment.objects.all()
    assert appointments.count() == report.appointments
    # Cancelled bookings hold no seat; the others hold one each, unique in their slot (the DB checks it).
    assert not appointments.filter(status=AppointmentStatus.CANCELLED, seat__isnull=False).exists()
    assert not appointments.exclude(status=AppointmentStatus.CANCELLED).filter(seat__isnull=True).exists()
    # Each slot's local date is its start in the clinic's zone.
    for slot in Slot.objects.select_related("clinic").order_by("?")[:50]:
        assert slot.start.astimezone(slot.clinic.tz).date() == slot.date
    # One consultation per completed visit; care notes dated on the visit's day.
    assert Consultation.objects.count() == appointments.filter(status=AppointmentStatus.COMPLETED).count()
    assert report.care_notes == CareNote.objects.count() > 0
    # Registrations after the seed continue the MRN sequence.
    assert MrnSequence.objects.get().last_value == Patient.objects.count() == 60


def test_the_shape_is_realistic():
    report = seed_scale(ScaleSpec(**{**SMALL, "days": 56, "patients": 400}, seed=5), progress=False)

    counts = report.counts_by_status
    total = sum(counts.values())
    assert 0.07 <= counts[AppointmentStatus.CANCELLED] / total <= 0.14
    kept = total - counts[AppointmentStatus.CANCELLED]
    assert 0.05 <= counts[AppointmentStatus.NO_SHOW] / kept <= 0.11
    by_weekday = {}
    for slot_date, n in Appointment.objects.values_list("slot__date").annotate(n=Count("id")):
        by_weekday.setdefault(slot_date.weekday(), []).append(n)
    assert 6 not in by_weekday  # closed on Sundays
    average = {day: sum(v) / len(v) for day, v in by_weekday.items()}
    assert average[0] == max(average.values())  # Mondays are the busiest
    assert average[5] == min(average.values())  # Saturday mornings the quietest
    # Patients come back: more visits than patients seen.
    assert Appointment.objects.values("patient").distinct().count() < total


def test_the_command_prints_progress_and_a_summary():
    out = io.StringIO()

    call_command(
        "seed_scale",
        "--clinics=1",
        "--doctors=1",
        "--patients=20",
        "--days=7",
        "--seed=1",
        "--batch-size=50",
        f"--until={UNTIL}",
        stdout=out,
    )

    text = out.getvalue()
    assert "history org 1/1 [" in text
    assert "100.0%" in text
    assert "appointments" in text
    assert "care notes" in text


def test_the_command_refuses_to_seed_the_same_prefix_twice():
    from django.core.management.base import CommandError

    args = ["--clinics=1", "--doctors=1", "--patients=5", "--days=2", "--no-progress", f"--until={UNTIL}"]
    call_command("seed_scale", *args, stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exist"):
        call_command("seed_scale", *args, stdout=io.StringIO())


def test_seed_demo_takes_the_scale_options_and_adds_generated_history(settings):
    from io import StringIO

    from django.core.management import call_command

    from opd.core.models import Organization
    from scheduling.models import Appointment

    settings.DEBUG = True
    out = StringIO()
    call_command(
        "seed_demo",
        "--organizations=1",
        "--clinics=1",
        "--doctors=2",
        "--patients=40",
        "--days=5",
        "--prefix=demoscale",
        "--no-color",
        stdout=out,
    )
    scaled = Organization.objects.get(slug__startswith="demoscale-")
    assert Organization.objects.filter(slug="demo").exists()  # the ordinary demo is there too
    assert Appointment.objects.filter(organization=scaled).count() > 0
    assert "appointments" in out.getvalue()


def _columns(instance) -> dict:
    """A stored row as the writer takes it: every column's value by attribute name."""
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_values_written_as_sql_text_read_back_unchanged():
    """The writer formats values itself on MariaDB; every kind of value must survive it exactly."""
    seed_scale(ScaleSpec(**TINY, patients=5, days=3), progress=False)
    patient = Patient.objects.order_by("id").first()
    consultation = Consultation.objects.order_by("id").first()
    tricky = 'O\'Brien \\ "quoted"\nline two\r\t\x00 \x1a ünïcødé 患者 🩺 --; DROP TABLE x'
    moment = dt.datetime(2026, 3, 14, 23, 59, 58, 123456, tzinfo=dt.UTC)
    patient_row = _columns(patient)
    consultation_row = _columns(consultation)
    patient_row.update(
        id=patient.id + 10_000,
        mrn="X-1",
        user_id=None,
        last_name=tricky,
        address="",
        phone="\\'",
        sex=Sex.FEMALE,
        date_of_birth=dt.date(1931, 2, 28),
        created_at=moment,
    )
    consultation_row.update(
        plan=tricky,
        temperature=Decimal("38.5"),
        weight_kg=Decimal("102.25"),
        height_cm=None,
        on_supplemental_oxygen=True,
        hypercapnic_respiratory_failure=False,
        vitals_recorded_at=moment,
        follow_up_date=None,
    )
    consultation.delete()

    for model, row in ((Patient, patient_row), (Consultation, consultation_row)):
        with Writer(1, model) as writer:
            writer.add(model, row)

    stored = Patient.objects.get(id=patient.id + 10_000)
    assert (stored.last_name, stored.phone, stored.sex, stored.date_of_birth, stored.created_at) == (
        tricky,
        "\\'",
        "female",
        dt.date(1931, 2, 28),
        moment,
    )
    stored = Consultation.objects.get(id=consultation_row["id"])
    assert stored.plan == tricky
    assert (stored.temperature, stored.weight_kg, stored.height_cm) == (
        Decimal("38.5"),
        Decimal("102.25"),
        None,
    )
    assert (stored.on_supplemental_oxygen, stored.hypercapnic_respiratory_failure) == (True, False)
    assert (stored.vitals_recorded_at, stored.follow_up_date) == (moment, None)


def test_the_writer_refuses_a_value_it_cannot_format():
    assert Table(Patient).literals  # the tests run on MariaDB
    with pytest.raises(TypeError, match="cannot store a list"):
        Table(Patient).add({"last_name": ["not", "text"]})


def _writer_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "seed-writer"]


def test_a_batch_the_database_refuses_fails_the_seed_in_the_callers_thread():
    seed_scale(ScaleSpec(**TINY, patients=3, days=1), progress=False)
    taken = Patient.objects.order_by("id").first()
    row = _columns(taken)

    def write_a_taken_id():
        with Writer(1, Patient) as writer:
            assert writer.background  # MariaDB: batches go from the second thread
            writer.add(Patient, row)  # a full batch: sent to the thread, refused there (the id exists)

    with pytest.raises(IntegrityError, match="Duplicate entry"):
        write_a_taken_id()

    assert _writer_threads() == []
    assert Patient.objects.count() == 3


def test_an_error_while_generating_stops_the_writer_thread():

    seed_scale(ScaleSpec(**TINY, patients=3, days=1), progress=False)
    row = _columns(Patient.objects.first())

    def fail_half_way():
        with Writer(1, Patient) as writer:
            writer.add(Patient, {**row, "id": row["id"] + 100, "mrn": "X-2"})
            assert len(_writer_threads()) == 1
            raise ZeroDivisionError  # the generator failing

    with pytest.raises(ZeroDivisionError):
        fail_half_way()

    assert _writer_threads() == []


def test_with_debug_on_the_seed_keeps_no_copy_of_its_rows(settings):
    """seed_demo runs with DEBUG on, where Django records each statement's text in connection.queries."""
    settings.DEBUG = True
    reset_queries()

    report = seed_scale(ScaleSpec(**SMALL, seed=2), progress=False)

    assert report.appointments > 1000  # as SQL text, well over a megabyte
    assert sum(len(query["sql"]) for query in connection.queries) < 50_000
