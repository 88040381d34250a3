"""The data migration that brought stored phone numbers into E.164 (#17), run by Django's migration
executor on MariaDB: rows written as the code before it wrote them, then the migration, then what a
user of the new code sees."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from opd.core import crypto
from patients.models import Patient
from patients.selectors import patient_search

pytestmark = pytest.mark.django_db(transaction=True)


def phone_migration(executor):
    return next(key for key in executor.loader.graph.nodes if key[0] == "patients" and "phone_e164" in key[1])


@pytest.fixture
def executor():
    executor = MigrationExecutor(connection)
    migration = phone_migration(executor)
    parents = [p.key for p in executor.loader.graph.node_map[migration].parents]
    executor.migrate([key for key in parents if key[0] == "patients"])
    yield executor, parents, migration
    # Whatever happened, leave the database at the newest schema for the tests that follow.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_it_normalises_stored_numbers_and_reports_the_ones_it_cannot_read(executor, capsys):
    executor, before, migration = executor
    old = executor.loader.project_state(before).apps
    Organization, Clinic, Patient_ = (
        old.get_model("core", "Organization"),
        old.get_model("core", "Clinic"),
        old.get_model("patients", "Patient"),
    )
    org = Organization.objects.create(name="Riverside", slug="riverside")
    london = Clinic.objects.create(organization=org, name="London", code="ldn", time_zone="Europe/London")
    kolkata = Clinic.objects.create(
        organization=org, name="Kolkata", code="kol", time_zone="Asia/Kolkata", phone_region="IN"
    )

    def old_patient(mrn, clinic, phone, emergency=""):
        # As the code before the migration saved it: the number as typed, indexed on its last 7 digits.
        return Patient_.objects.create(
            organization=org,
            registered_at_clinic=clinic,
            mrn=mrn,
            first_name="P",
            last_name=mrn,
            date_of_birth=dt.date(1980, 1, 1),
            phone=phone,
            phone_index=crypto.blind_index("phone", phone),
            emergency_contact_phone=emergency,
        )

    old_patient("P001", london, "07700 900123", emergency="020 7946 0018")
    old_patient("P002", kolkata, "98765 43210")
    old_patient("P003", None, "0161 496 0000")  # no clinic: the organization's first (London)
    old_patient("P004", london, "+44 (0)20 7946 0999")
    old_patient("P005", london, "ring the ward")
    old_patient("P006", london, "+447700900555")  # already E.164: untouched
    old_patient("P007", london, "")

    MigrationExecutor(connection).migrate([migration])

    out = capsys.readouterr().out
    phones = {p.mrn: (p.phone, p.emergency_contact_phone) for p in Patient.objects.all()}
    assert phones == {
        "P001": ("+447700900123", "+442079460018"),
        "P002": ("+919876543210", ""),
        "P003": ("+441614960000", ""),
        "P004": ("+442079460999", ""),
        "P005": ("ring the ward", ""),
        "P006": ("+447700900555", ""),
        "P007": ("", ""),
    }
    for patient in Patient.objects.all():
        assert patient.phone_index == crypto.blind_index("phone", patient.phone), patient.mrn
    # Still encrypted at rest after the rewrite.
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM patients_patient WHERE mrn = 'P001'")
        (stored,) = cursor.fetchone()
    assert crypto.token_key_id(stored)
    assert "900123" not in stored
    assert "Phone numbers: 4 patients' numbers normalised to E.164." in out
    assert "1 patients have a number that could not be read" in out
    assert out.rstrip().endswith(": P005")
    # The desk still finds them by the number as typed before.
    assert [p.mrn for p in patient_search(Patient.objects.all(), "07700 900123")] == ["P001"]
    assert [p.mrn for p in patient_search(Patient.objects.all(), "98765 43210")] == ["P002"]
