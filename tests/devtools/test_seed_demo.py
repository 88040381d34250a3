"""seed_demo: a demo to try every role with, seeded once, refused with DEBUG off unless forced."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from opd.core.models import AuditEvent, Clinic, Department, Membership, Organization, Role, User
from patients.models import Allergy, Medication, Patient, Problem
from scheduling.models import Appointment, AppointmentStatus, ApprovalStatus, AvailabilityRule, Doctor, Slot
from scheduling.selectors import clinic_queue_snapshot, doctor_queue_snapshot

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def demo_counts() -> dict[str, int]:
    models = (
        Organization,
        Clinic,
        Department,
        User,
        Membership,
        Doctor,
        AvailabilityRule,
        Patient,
        Slot,
        Appointment,
        AuditEvent,
        Allergy,
        Problem,
        Medication,
    )
    return {model.__name__: model.objects.count() for model in models}


def printed_credentials(output: str) -> dict[str, tuple[str, str]]:
    """{username: (role, password)} from the table seed_demo prints."""
    rows = re.findall(r"^(superuser|admin|staff|nurse|doctor|patient)\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    return {username: (role, password) for role, username, password in rows}


def test_it_refuses_to_seed_with_debug_off_unless_forced(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        run("seed_demo")

    assert not Organization.objects.exists()
    assert not User.objects.exists()


def test_it_seeds_the_demo_once(settings):
    settings.DEBUG = True

    run("seed_demo")
    first = demo_counts()
    run("seed_demo")

    assert demo_counts() == first
    assert first["Organization"] == 1
    assert first["Clinic"] == 2
    assert first["Doctor"] >= 2
    assert first["Patient"] == 50
    assert first["Appointment"] > 0
    assert first["Allergy"] >= 3
    assert first["Problem"] >= 3
    assert first["Medication"] >= 3


def test_the_demo_patient_is_allergic_to_amoxicillin_with_problems_and_medications(settings):
    settings.DEBUG = True
    run("seed_demo")

    patient = Patient.objects.get(user__username="demo-patient")
    assert list(patient.allergies.values_list("substance", flat=True)) == ["Amoxicillin"]
    assert patient.problems.get().icd10_code == "I10"
    assert patient.medications.get().name == "Amlodipine"
    assert Patient.objects.filter(no_known_allergies_at__isnull=False).count() == 1


def test_it_builds_a_demo_to_try_every_role_with(settings):
    settings.DEBUG = True

    output = run("seed_demo")

    assert "DEMO credentials" in output
    clinics = list(Clinic.objects.all())
    assert len({clinic.time_zone for clinic in clinics}) == 2
    assert all(Department.objects.filter(clinic=clinic).exists() for clinic in clinics)

    credentials = printed_credentials(output)
    roles = {role for role, _ in credentials.values()}
    assert roles == {"superuser", "admin", "staff", "nurse", "doctor", "patient"}
    for username, (role, password) in credentials.items():
        # A request, as every sign-in door gives one: django-axes checks the lockout against it.
        user = authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)
        assert user is not None, f"the printed password of {username} does not work"
        if role in ("superuser", "admin", "staff", "nurse"):
            assert user.is_staff, f"{username} cannot use the admin"
    staff_clinics = {
        m.clinic_id for m in Membership.objects.filter(user__role=Role.STAFF, user__username__in=credentials)
    }
    assert staff_clinics == {clinic.pk for clinic in clinics}
    nurse_clinics = {
        m.clinic_id
        for m in Membership.objects.filter(
            is_nurse=True,
            user__username__in=[name for name, (role, _) in credentials.items() if role == "nurse"],
        )
    }
    assert nurse_clinics == {clinic.pk for clinic in clinics}
    assert not Membership.objects.filter(is_nurse=True, user__username__startswith="demo-reception").exists()
    for username, (role, _) in credentials.items():
        if role == "nurse":
            assert f"  {username} " in output.split("second factor")[-1], (
                f"{username} has no authenticator key"
            )
    patient_user = User.objects.get(username__in=credentials, role=Role.PATIENT)
    assert Patient.objects.filter(user=patient_user).exists()


def test_it_gives_every_demo_doctor_slots_for_the_next_two_weeks(settings):
    settings.DEBUG = True

    run("seed_demo")

    doctors = Doctor.objects.select_related("user").prefetch_related("departments__clinic")
    assert doctors.exists()
    for doctor in doctors:
        assert doctor.approval_status == ApprovalStatus.APPROVED
        assert doctor.user.role == Role.DOCTOR
        clinic = doctor.departments.first().clinic
        assert Membership.objects.filter(user=doctor.user, clinic=clinic).exists()
        today = timezone.localdate(timezone=clinic.tz)
        days_with_slots = set(
            Slot.objects.filter(doctor=doctor, is_active=True, date__gt=today).values_list("date", flat=True)
        )
        wanted = {today + dt.timedelta(days=n) for n in range(1, 15)}
        assert wanted <= days_with_slots, f"{doctor} has no slots on {sorted(wanted - days_with_slots)}"
    # The demo appointments were booked through the booking service, on future slots.
    appointments = Appointment.objects.all()
    assert appointments.exists()
    assert all(a.start > timezone.now() for a in appointments)
    assert AuditEvent.objects.filter(action="appointment.booked").count() == appointments.count()


def test_it_fills_todays_queue_for_every_doctor(settings):
    settings.DEBUG = True
    # Mid-morning in London, late afternoon in Kolkata: one clinic inside a weekly session, the other
    # near its end (the command adds a session from now there).
    morning = dt.datetime.combine(
        timezone.now().date() + dt.timedelta(days=1), dt.time(10, 37), tzinfo=dt.UTC
    )

    with time_machine.travel(morning, tick=False):
        output = run("seed_demo")
        first = demo_counts()
        snapshots = {doctor.pk: doctor_queue_snapshot(doctor) for doctor in Doctor.objects.all()}
        run("seed_demo")
        assert demo_counts() == first

    assert "Today's queues:" in output
    assert len(snapshots) == 4
    for snapshot in snapshots.values():
        counts = snapshot["counts"]
        assert counts["in_consultation"] == 1, counts
        assert counts["completed"] == 3, counts
        assert counts["no_show"] == 1, counts
        assert counts["waiting"] >= 2, counts
        assert counts["expected"] >= 1, counts
        # Tokens were issued in order of arrival, one per patient who came.
        entries = [snapshot["current"], *snapshot["waiting"], *snapshot["done"]]
        assert sorted(e["token"] for e in entries) == list(range(1, len(entries) + 1))
        # Seen patients give the doctor a running average, and the waits follow from it.
        assert snapshot["average_sample"] == 3
        assert 10 <= snapshot["average_consultation_minutes"] <= 14
        assert (
            snapshot["waiting"][1]["estimated_wait_minutes"]
            > snapshot["waiting"][0]["estimated_wait_minutes"]
        )
        assert snapshot["version"] > 0
        assert snapshot["doctor"]["room"].startswith("Room ")
    for clinic in Clinic.objects.all():
        with time_machine.travel(morning, tick=False):
            board = clinic_queue_snapshot(clinic)
        assert len(board["doctors"]) == 2
        assert all(line["waiting"] for line in board["doctors"])
    # Everyone went through the services: every check-in, call and visit is in the audit trail.
    assert (
        AuditEvent.objects.filter(action="appointment.checked_in").count()
        == Appointment.objects.filter(token_number__isnull=False).count()
    )
    assert AuditEvent.objects.filter(action="appointment.completed").count() == 12
    assert Appointment.objects.filter(status=AppointmentStatus.NO_SHOW).count() == 4
