"""The published OpenAPI is a contract: schemathesis fuzzes every operation against a live server.

The demo data (devtools' seed_demo) plus a consultation with a prescription, a result and a care note give
the generated requests real ids to hit. Two personas run the whole schema: a superuser (every door open) and
a patient (most doors refused or narrowed). Any server error, status the schema does not list, or body that
does not match its schema fails the test, with schemathesis' own report in the assertion message.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest
from django.utils import timezone

from consultations.models import RecordType
from consultations.services import (
    care_note_create,
    consultation_open,
    prescription_create,
    result_create,
)
from devtools.management.commands.seed_demo import seed
from opd.core.models import Role, User
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book, appointment_cancel, appointment_check_in
from tests.conftest import token_for
from tests.factories import SlotFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
SEED = 20240613  # one fixed seed: a failure found once is found again
MAX_EXAMPLES = 25  # generated cases per operation in the fuzzing phase
# The whole budget of each run (both run at once): coverage takes what it needs, fuzzing repeats until
# the budget is spent. About two and a half minutes for the test on two cores.
MAX_SECONDS = 130


def _schemathesis() -> str:
    # The executable beside this interpreter (the project's virtualenv), else one on PATH.
    beside = Path(sys.executable).with_name("schemathesis")
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -r requirements/dev.txt")
    return found


def _clinical_day() -> tuple[User, User]:
    """The demo organization, plus today's consultation of the demo patient; returns (superuser, patient)."""
    demo = seed()
    superuser = User.objects.get(username="demo-super")
    patient_user = User.objects.get(username="demo-patient")
    patient = demo.patients[0]
    doctor = demo.doctors[0]
    department = doctor.departments.first()

    # A slot starting in a few minutes: the patient has checked in early and the doctor consults now.
    now = timezone.now().replace(microsecond=0)
    slot = SlotFactory(doctor=doctor, department=department, start=now + dt.timedelta(minutes=5), capacity=1)
    appointment = appointment_book(actor=demo.admin, patient=patient, slot=slot, reason="Fuzzing")
    appointment = appointment_check_in(actor=demo.admin, appointment=appointment)
    consultation = consultation_open(actor=doctor.user, appointment=appointment)
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[
            {
                "medication": "Paracetamol",
                "dose": "500 mg",
                "frequency": "6-hourly",
                "duration": "3 days",
                "quantity": 12,
            }
        ],
    )
    result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="Haemoglobin",
        record_type=RecordType.LAB_REPORT,
        value="13.1",
        unit="g/dL",
    )
    care_note_create(
        actor=doctor.user,
        patient=patient,
        clinic=department.clinic,
        category="observation",
        text="Comfortable.",
    )
    # A cancelled appointment: its cancelled_at and reason are filled, unlike a booked one's.
    booked = Appointment.objects.filter(patient=patient, status=AppointmentStatus.BOOKED).first()
    if booked is not None:
        appointment_cancel(actor=demo.admin, appointment=booked, reason="Fuzzing")
    assert superuser.is_superuser
    assert patient_user.role == Role.PATIENT
    return superuser, patient_user


def _start(base_url: str, user: User, tmp_path: Path, output: IO[str]) -> subprocess.Popen[str]:
    token = token_for(user)
    workdir = tmp_path / user.username
    command = [
        _schemathesis(),
        "run",
        f"{base_url}/api/schema/?format=json",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(workdir),
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    return subprocess.Popen(  # noqa: S603 (our own executable, arguments built here)
        command,
        stdout=output,  # a file, not a pipe: neither run waits on a reader
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=workdir,  # its .schemathesis cache lands there, not in the repository
    )


def test_the_api_answers_as_its_schema_says(live_server, tmp_path, settings):
    # Two clients fuzzing from one address for minutes would reach the real rate limits and spend the run
    # on 429s (documented, so allowed): generous rates keep every other answer under test.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates, "100000/hour"),
    }
    superuser, patient_user = _clinical_day()

    # Both personas at once: the server and the two clients share the machine's cores.
    runs = {}
    for user in (superuser, patient_user):
        (tmp_path / user.username).mkdir()
        output = (tmp_path / user.username / "output.txt").open("w")
        runs[user.username] = (_start(live_server.url, user, tmp_path, output), output)
    failed = {}
    for name, (run, output) in runs.items():
        run.wait(timeout=MAX_SECONDS + 120)
        output.close()
        if run.returncode != 0:
            failed[name] = (tmp_path / name / "output.txt").read_text()
    assert not failed, "\n\n".join(f"schemathesis as {name}:\n{out}" for name, out in failed.items())
