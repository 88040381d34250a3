"""The data migrations that rewrite what is already stored, run from the schema before them on MariaDB
(django-test-migrations): rows written by the release before, then the migration, then what the new
code reads. One migrator run covers both (each run rebuilds the schema from nothing, ~the cost of
creating the test database)."""

from __future__ import annotations

import datetime as dt

import pytest

from opd.core import crypto
from opd.core.audit import event_mac

pytestmark = pytest.mark.slow

BEFORE_AUDIT_MAC = ("core", "0007_second_factor")
AUDIT_MAC = ("core", "0008_audit_append_only_and_hash_chain")
BEFORE_E164 = ("patients", "0004_problems_medications")
E164 = ("patients", "0005_phone_e164_merges_duplicates")


def test_audit_rows_get_their_mac_and_phone_numbers_move_to_e164(migrator):
    old = migrator.apply_initial_migration(BEFORE_AUDIT_MAC)
    AuditEvent = old.apps.get_model("core", "AuditEvent")
    written = [
        AuditEvent.objects.create(action="patient.create", object_type="patient", object_id=str(n))
        for n in range(3)
    ]

    new = migrator.apply_tested_migration(AUDIT_MAC)

    events = list(new.apps.get_model("core", "AuditEvent").objects.filter(pk__in=[e.pk for e in written]))
    assert len(events) == 3
    # The MAC the verifier recomputes from each row's content, under the deployment's audit key.
    assert all(event.mac and event.mac == event_mac(event) for event in events)
    assert len({event.mac for event in events}) == 3

    old = migrator.apply_tested_migration(BEFORE_E164)
    Organization = old.apps.get_model("core", "Organization")
    Clinic = old.apps.get_model("core", "Clinic")
    Patient = old.apps.get_model("patients", "Patient")
    organization = Organization.objects.create(name="Riverside", slug="riverside")
    london = Clinic.objects.create(
        organization=organization, name="London", code="ldn", time_zone="Europe/London"
    )
    Clinic.objects.create(organization=organization, name="Paris", code="par", time_zone="Europe/Paris")

    def patient(mrn: str, clinic, **phones: str):
        return Patient.objects.create(
            organization=organization,
            registered_at_clinic=clinic,
            mrn=mrn,
            first_name="Test",
            last_name=mrn,
            date_of_birth=dt.date(1980, 1, 1),
            **phones,
        )

    typed = patient("M1", london, phone="07700 900123", emergency_contact_phone="0033 1 42 68 53 00")
    no_clinic = patient("M2", None, phone="020 7946 0018")  # read in the organization's first clinic's region
    unreadable = patient("M3", london, phone="ask at the desk")
    already = patient("M4", london, phone="+447700900999")

    new = migrator.apply_tested_migration(E164)

    Patient = new.apps.get_model("patients", "Patient")
    by_pk = {p.pk: p for p in Patient.objects.all()}
    assert by_pk[typed.pk].phone == "+447700900123"
    assert by_pk[typed.pk].emergency_contact_phone == "+33142685300"
    assert by_pk[no_clinic.pk].phone == "+442079460018"
    assert by_pk[unreadable.pk].phone == "ask at the desk"
    assert by_pk[already.pk].phone == "+447700900999"
    # Search goes through the blind index, which moved with the number.
    assert list(Patient.objects.filter(phone_index=crypto.blind_index("phone", "+447700900123"))) == [
        by_pk[typed.pk]
    ]
