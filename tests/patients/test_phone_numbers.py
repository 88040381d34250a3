"""Phone numbers in E.164, read in the registering clinic's region (#17)."""

import datetime as dt

import pytest
from django.core.management import call_command

from opd.core.crypto import blind_index
from opd.core.errors import ValidationFailed
from opd.core.phones import phone_display, region_for_time_zone
from opd.core.services import clinic_create, clinic_update
from patients.models import Patient
from patients.services import patient_create, patient_update
from tests.conftest import assert_error
from tests.factories import ClinicFactory, PatientFactory

pytestmark = pytest.mark.django_db


def register(org, clinic, phone, **fields):
    return patient_create(
        actor=None,
        organization=org,
        registered_at_clinic=clinic,
        first_name=fields.pop("first_name", "Mary"),
        last_name=fields.pop("last_name", "Seacole"),
        date_of_birth=dt.date(1985, 11, 23),
        phone=phone,
        **fields,
    )


def test_it_stores_a_national_number_in_e164_read_in_the_registering_clinics_region(org):
    london = ClinicFactory(organization=org, time_zone="Europe/London")
    kolkata = ClinicFactory(organization=org, time_zone="Asia/Kolkata")

    uk = register(org, london, "07700 900123", emergency_contact_phone="020 7946 0018")
    india = register(org, kolkata, "98765 43210", first_name="Priya", last_name="Sen")
    abroad = register(org, kolkata, "00 44 20 7946 0999", first_name="Ann", last_name="Other")

    uk.refresh_from_db()
    assert (uk.phone, uk.emergency_contact_phone) == ("+447700900123", "+442079460018")
    assert uk.phone_index == blind_index("phone", "+447700900123")
    assert Patient.objects.get(pk=india.pk).phone == "+919876543210"
    assert Patient.objects.get(pk=abroad.pk).phone == "+442079460999"


def test_it_refuses_what_is_not_a_phone_number_naming_the_field_and_writing_nothing(org, clinic):
    for typed in ("123", "call my mum", "020 7946 0018 ext 12", "7946 0018"):
        with pytest.raises(ValidationFailed) as caught:
            register(org, clinic, typed)
        assert set(caught.value.fields) == {"phone"}, typed
    with pytest.raises(ValidationFailed) as caught:
        register(org, clinic, "07700 900123", emergency_contact_phone="12")
    assert set(caught.value.fields) == {"emergency_contact_phone"}
    assert not Patient.objects.exists()


def test_the_api_answers_400_naming_phone(api_as, staff_user, clinic):
    body = {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "phone": "12345",
        "registered_at_clinic": clinic.pk,
    }

    assert_error(api_as(staff_user).post("/api/v1/patients/", body), 400, code="invalid", fields=["phone"])
    assert not Patient.objects.exists()


def test_it_finds_a_patient_by_the_national_number_as_typed_at_the_desk(api_as, staff_user, org, clinic):
    register(org, clinic, "+44 7700 900123")

    for term in ("07700 900123", "7700900123", "+447700900123", "0900123"):
        response = api_as(staff_user).get("/api/v1/patients/", {"search": term})
        assert [row["last_name"] for row in response.json()["results"]] == ["Seacole"], term


def test_an_edit_reads_the_number_in_the_patients_clinic_region_and_a_new_spelling_is_no_change(org):
    kolkata = ClinicFactory(organization=org, time_zone="Asia/Kolkata")
    patient = register(org, kolkata, "98765 43210")

    patient_update(actor=None, patient=patient, phone="+91 98765 43210")  # the same number
    patient_update(
        actor=None, patient=Patient.objects.get(pk=patient.pk), emergency_contact_phone="91234 56789"
    )

    patient.refresh_from_db()
    assert (patient.phone, patient.emergency_contact_phone) == ("+919876543210", "+919123456789")
    from opd.core.models import AuditEvent

    updates = AuditEvent.objects.filter(action="patient.updated", object_id=str(patient.pk))
    assert [event.data["fields"] for event in updates] == [["emergency_contact_phone"]]


def test_a_number_kept_as_typed_before_e164_does_not_block_other_edits(org, clinic):
    patient = register(org, clinic, "07700 900123")
    Patient.objects.filter(pk=patient.pk).update(phone="ask at reception")  # as a legacy row
    patient = Patient.objects.get(pk=patient.pk)

    patient_update(actor=None, patient=patient, phone="ask at reception", last_name="Seacole-Grant")

    patient.refresh_from_db()
    assert (patient.phone, patient.last_name) == ("ask at reception", "Seacole-Grant")


def test_a_clinics_region_defaults_to_its_time_zones_country_and_is_validated(admin_user, org):
    kolkata = clinic_create(
        actor=admin_user, organization=org, name="Kolkata", code="kol", time_zone="Asia/Kolkata"
    )
    utc = clinic_create(actor=admin_user, organization=org, name="Online", code="web", time_zone="UTC")
    chosen = clinic_create(
        actor=admin_user, organization=org, name="Dubai", code="dxb", time_zone="UTC", phone_region="ae"
    )

    assert (kolkata.phone_region, utc.phone_region, chosen.phone_region) == ("IN", "", "AE")
    assert region_for_time_zone("Asia/Calcutta") == "IN"  # an old name of the zone
    with pytest.raises(ValidationFailed) as caught:
        clinic_update(actor=admin_user, clinic=utc, phone_region="XX")
    assert set(caught.value.fields) == {"phone_region"}
    utc.refresh_from_db()
    assert utc.phone_region == ""


def test_it_shows_staff_national_numbers_of_their_country_and_international_ones_otherwise():
    assert phone_display("+447700900123", "GB") == "07700 900123"
    assert phone_display("+919876543210", "GB") == "+91 98765 43210"
    assert phone_display("ask at reception", "GB") == "ask at reception"


def test_phone_report_lists_unreadable_numbers_by_mrn_without_printing_them(org, clinic, capsys):
    good = PatientFactory(organization=org, registered_at_clinic=clinic)
    bad = PatientFactory(organization=org, registered_at_clinic=clinic)
    Patient.objects.filter(pk=bad.pk).update(phone="ring the ward")

    with pytest.raises(SystemExit) as exited:
        call_command("phone_report")

    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert f"UNREADABLE  {bad.mrn}  {org.slug}  phone" in out
    assert good.mrn not in out
    assert "ring the ward" not in out
    assert "1 unreadable phone numbers." in out
