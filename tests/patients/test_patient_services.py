import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from opd.core.crypto import blind_index
from opd.core.errors import ValidationFailed
from opd.core.models import AuditEvent
from patients.models import Patient, PatientStatus
from patients.services import patient_create, patient_set_status, patient_update
from tests.factories import OrganizationFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_it_gives_each_organization_its_own_mrn_sequence(org, other_org):
    first = PatientFactory(organization=org)
    second = PatientFactory(organization=org)
    elsewhere = PatientFactory(organization=other_org)
    assert (first.mrn, second.mrn) == ("P00000001", "P00000002")
    assert elsewhere.mrn == "P00000001"


def test_it_refuses_a_birth_date_in_the_future_or_too_long_ago(org):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as err:
        patient_create(actor=None, organization=org, first_name="A", last_name="B", date_of_birth=tomorrow)
    assert "date_of_birth" in err.value.fields
    with pytest.raises(ValidationFailed):
        patient_create(
            actor=None, organization=org, first_name="A", last_name="B", date_of_birth=dt.date(1850, 1, 1)
        )
    assert not Patient.objects.exists()


def test_it_keeps_a_phone_blind_index_for_search_and_audits_changes(staff_user, org):
    patient = patient_create(
        actor=staff_user,
        organization=org,
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1960, 1, 1),
        phone="+44 (20) 7946-0018",
    )
    assert patient.phone_index == blind_index("phone", "9460018")
    patient_update(actor=staff_user, patient=patient, phone="020 7946 0999")
    patient.refresh_from_db()
    assert patient.phone_index == blind_index("phone", "9460999") != ""
    event = AuditEvent.objects.filter(object_id=str(patient.pk), action="patient.updated").get()
    assert (event.data["fields"], event.patient_id) == (["phone"], patient.pk)
    # The number itself stays out of the (unencrypted) trail: its length and a keyed fingerprint only.
    assert event.data["changes"]["phone"]["after"]["length"] == len("020 7946 0999")
    assert "7946" not in str(event.data)


def test_deactivation_keeps_the_record(staff_user, patient):
    patient_set_status(actor=staff_user, patient=patient, status=PatientStatus.INACTIVE)
    patient.refresh_from_db()
    assert patient.status == PatientStatus.INACTIVE
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_it_refuses_unknown_fields(org):
    with pytest.raises(ValidationFailed) as err:
        patient_create(
            actor=None,
            organization=org,
            first_name="A",
            last_name="B",
            date_of_birth=dt.date(1990, 1, 1),
            mrn="X",
        )
    assert "mrn" in err.value.fields


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_never_share_an_mrn():
    org = OrganizationFactory()
    barrier = threading.Barrier(20)
    errors = []

    def register(i):
        try:
            barrier.wait()
            patient_create(
                actor=None,
                organization=org,
                first_name=f"P{i}",
                last_name="X",
                date_of_birth=dt.date(1990, 1, 1),
                confirm_new_patient=True,  # "P1 X" and "P2 X", born the same day, look alike
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    mrns = list(Patient.objects.filter(organization=org).values_list("mrn", flat=True))
    assert len(mrns) == len(set(mrns)) == 20
