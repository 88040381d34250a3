"""Patients in the admin: the organization's index for its staff, writes through the patient services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opd.core.crypto import blind_index
from opd.core.models import AuditEvent
from patients.models import Patient, PatientStatus
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:patients_patient_changelist")
ADD = reverse("admin:patients_patient_add")


def change_url(patient) -> str:
    return reverse("admin:patients_patient_change", args=[patient.pk])


def listed(response) -> set:
    return {obj.pk for obj in response.context["cl"].result_list}


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def person(**overrides) -> dict:
    return {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "phone": "+44 20 7946 0999",
        "email": "mary@example.org",
        "address": "",
        "emergency_contact_name": "",
        "emergency_contact_phone": "",
        "insurance_provider": "",
        "insurance_policy_number": "",
        **overrides,
    }


@pytest.mark.parametrize("persona", ["admin_user", "staff_user"])
def test_it_lists_the_organizations_patients_and_nobody_elses(
    request, client, persona, patient, other_patient, other_org_patient
):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert listed(response) == {patient.pk, other_patient.pk}
    assert "Turing" not in response.content.decode()


def test_it_gives_a_404_for_another_organizations_patient(client, staff_user, other_org_patient):
    client.force_login(staff_user)
    assert client.get(change_url(other_org_patient)).status_code == 404
    assert client.post(change_url(other_org_patient), person()).status_code == 404


def test_it_finds_a_patient_by_the_start_of_the_name_or_exact_mrn(client, staff_user, patient, other_patient):
    client.force_login(staff_user)
    assert listed(client.get(CHANGELIST, {"q": "ada lov"})) == {patient.pk}
    assert listed(client.get(CHANGELIST, {"q": other_patient.mrn})) == {other_patient.pk}


def test_it_registers_a_patient_with_a_generated_mrn_and_an_audit_event(client, staff_user, org, clinic):
    client.force_login(staff_user)
    form = client.get(ADD).context["adminform"].form
    assert form.initial["registered_at_clinic"] == clinic.pk  # reception at one clinic
    response = client.post(ADD, {**person(), "registered_at_clinic": clinic.pk, "mrn": "FORGED"})
    assert response.status_code == 302
    mary = Patient.objects.get(last_name="Seacole")
    assert mary.mrn.startswith("P")
    assert mary.mrn != "FORGED"
    assert (mary.organization_id, mary.registered_at_clinic_id) == (org.pk, clinic.pk)
    assert mary.phone_index == blind_index("phone", "+44 20 7946 0999")
    event = AuditEvent.objects.get(action="patient.registered", object_id=str(mary.pk))
    assert event.actor_id == staff_user.pk


def test_it_shows_a_future_birth_date_beside_the_field_and_writes_nothing(client, staff_user, clinic):
    client.force_login(staff_user)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = client.post(
        ADD, {**person(date_of_birth=tomorrow.isoformat()), "registered_at_clinic": clinic.pk}
    )
    assert response.status_code == 200
    assert form_errors(response)["date_of_birth"] == ["Date of birth cannot be in the future."]
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_registers_nobody_at_another_organizations_clinic(client, admin_user, other_org_clinic):
    client.force_login(admin_user)
    response = client.post(ADD, {**person(), "registered_at_clinic": other_org_clinic.pk})
    assert response.status_code == 200
    assert "registered_at_clinic" in form_errors(response)
    assert not Patient.objects.exists()


def test_it_updates_a_patient_through_the_service_and_keeps_the_mrn(client, staff_user, patient):
    client.force_login(staff_user)
    mrn = patient.mrn
    response = client.post(
        change_url(patient),
        person(first_name="Ada", last_name="King", date_of_birth="1980-05-17", phone=patient.phone, mrn="X"),
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.last_name, patient.mrn) == ("King", mrn)
    event = AuditEvent.objects.get(action="patient.updated", object_id=str(patient.pk))
    assert "last_name" in event.data["fields"]
    assert event.actor_id == staff_user.pk


def test_it_deactivates_and_reactivates_patients_with_an_audit_trail(
    client, staff_user, patient, other_patient
):
    client.force_login(staff_user)
    selected = [patient.pk, other_patient.pk]
    response = client.post(
        CHANGELIST, {"action": "deactivate_patients", "_selected_action": selected}, follow=True
    )
    assert "Deactivated 2 patients." in [str(m) for m in response.context["messages"]]
    assert set(Patient.objects.values_list("status", flat=True)) == {PatientStatus.INACTIVE}
    assert AuditEvent.objects.filter(action="patient.inactive").count() == 2

    response = client.post(
        CHANGELIST, {"action": "reactivate_patients", "_selected_action": [patient.pk]}, follow=True
    )
    assert "Reactivated 1 patient." in [str(m) for m in response.context["messages"]]
    patient.refresh_from_db()
    assert patient.status == PatientStatus.ACTIVE


def test_it_never_deletes_a_patient(client, admin_user, patient):
    client.force_login(admin_user)
    assert client.get(reverse("admin:patients_patient_delete", args=[patient.pk])).status_code == 403
    response = client.get(CHANGELIST)
    assert "delete_selected" not in dict(
        response.context["cl"].model_admin.get_actions(response.wsgi_request)
    )
    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [patient.pk], "post": "yes"})
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_it_leaves_another_organizations_patient_alone_in_bulk_actions(client, staff_user, other_org_patient):
    client.force_login(staff_user)
    client.post(CHANGELIST, {"action": "deactivate_patients", "_selected_action": [other_org_patient.pk]})
    other_org_patient.refresh_from_db()
    assert other_org_patient.status == PatientStatus.ACTIVE


def test_it_offers_only_the_organizations_patients_for_autocomplete(
    client, staff_user, patient, other_org_patient
):
    client.force_login(staff_user)
    for term, expected in (("Ada", [patient.pk]), ("Alan", [])):
        response = client.get(
            reverse("admin:autocomplete"),
            {"app_label": "scheduling", "model_name": "appointment", "field_name": "patient", "term": term},
        )
        assert [int(r["id"]) for r in response.json()["results"]] == expected


def test_it_lists_patients_in_a_constant_number_of_queries(
    client, staff_user, org, clinic, django_assert_max_num_queries
):
    client.force_login(staff_user)
    for _ in range(3):
        PatientFactory(organization=org, registered_at_clinic=clinic)
    client.get(CHANGELIST)  # warm up the session and caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(CHANGELIST).status_code == 200
    for _ in range(20):
        PatientFactory(organization=org, registered_at_clinic=clinic)
    with django_assert_max_num_queries(len(few)):
        response = client.get(CHANGELIST)
    assert len(listed(response)) == 23


# Duplicates and merges (#17)


def test_the_booking_autocomplete_tells_namesakes_apart_by_birth_date_and_mrn(
    client, staff_user, org, clinic
):
    client.force_login(staff_user)
    older = PatientFactory(
        organization=org, first_name="Ann", last_name="Lee", date_of_birth=dt.date(1950, 2, 1)
    )
    younger = PatientFactory(
        organization=org, first_name="Ann", last_name="Lee", date_of_birth=dt.date(1990, 7, 9)
    )

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "scheduling", "model_name": "appointment", "field_name": "patient", "term": "ann lee"},
    )

    assert sorted(r["text"] for r in response.json()["results"]) == sorted(
        [f"Lee, Ann · born 01 Feb 1950 · {older.mrn}", f"Lee, Ann · born 09 Jul 1990 · {younger.mrn}"]
    )


def test_the_admin_shows_phone_numbers_national_for_the_clinics_country(client, staff_user, org, clinic):
    client.force_login(staff_user)
    PatientFactory(organization=org, registered_at_clinic=clinic, phone="07700 900123")
    PatientFactory(organization=org, registered_at_clinic=clinic, phone="+91 98765 43210")

    html = client.get(CHANGELIST).content.decode()

    assert "07700 900123" in html
    assert "+91 98765 43210" in html
    assert "+447700900123" not in html


def test_the_merge_page_refuses_another_organizations_record_and_a_doctor(
    client, staff_user, doctor, patient, other_org_patient
):
    client.force_login(staff_user)
    url = reverse("admin:patients_patient_merge", args=[other_org_patient.pk])
    assert client.get(url).status_code == 404
    response = client.post(
        reverse("admin:patients_patient_merge", args=[patient.pk]),
        {"keep_mrn": other_org_patient.mrn, "confirm": "yes"},
    )
    # MRNs are per organization: the other one's number finds this organization's record or none.
    assert 'class="errornote"' in response.content.decode()
    assert {p.status for p in Patient.objects.all()} == {PatientStatus.ACTIVE}

    client.force_login(doctor.user)
    assert client.get(reverse("admin:patients_patient_merge", args=[patient.pk])).status_code in (302, 403)


def test_reception_sees_a_flagged_sign_up_with_its_matches_and_marks_it_reviewed(
    client, staff_user, org, clinic
):
    from patients.services import patient_create

    mary = PatientFactory(
        organization=org,
        registered_at_clinic=clinic,
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
    )
    flagged = patient_create(
        actor=None,
        organization=org,
        registered_at_clinic=clinic,
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
        flag_possible_duplicate=True,
    )
    client.force_login(staff_user)

    assert listed(client.get(CHANGELIST, {"duplicate_review__exact": "1"})) == {flagged.pk}
    assert mary.mrn in client.get(change_url(flagged)).content.decode()
    client.post(CHANGELIST, {"action": "mark_not_duplicates", "_selected_action": [flagged.pk]})

    assert not Patient.objects.get(pk=flagged.pk).duplicate_review
