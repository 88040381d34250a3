import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opd.core.crypto import blind_index
from opd.core.models import AuditEvent
from patients.models import Patient, PatientStatus
from tests.conftest import assert_error
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/patients/"


def detail(patient_or_id, suffix=""):
    pk = getattr(patient_or_id, "pk", patient_or_id)
    return f"/api/v1/patients/{pk}/{suffix}"


def new_patient(**overrides):
    return {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": "1985-11-23",
        "sex": "female",
        "phone": "+44 20 7946 0999",
        "email": "mary@example.org",
        "address": "1 Crimea Road",
        "emergency_contact_name": "Edwin Seacole",
        "emergency_contact_phone": "+44 20 7946 0998",
        "insurance_provider": "NHS",
        "insurance_policy_number": "943 476 5919",
        **overrides,
    }


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True, organization=None)


# Reading


def test_it_lists_the_organizations_patients_for_staff(
    api_as, staff_user, patient, other_patient, other_org_patient
):
    response = api_as(staff_user).get(LIST)

    assert response.status_code == 200
    assert {row["last_name"] for row in response.json()["results"]} == {"Lovelace", "Hopper"}


def test_it_shows_every_field_of_a_patient(api_as, staff_user, patient):
    response = api_as(staff_user).get(detail(patient))

    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "id",
        "mrn",
        "organization",
        "registered_at_clinic",
        "first_name",
        "last_name",
        "full_name",
        "date_of_birth",
        "sex",
        "phone",
        "email",
        "address",
        "emergency_contact_name",
        "emergency_contact_phone",
        "insurance_provider",
        "insurance_policy_number",
        "status",
        "created_at",
        "updated_at",
    }
    assert (data["id"], data["mrn"], data["full_name"]) == (patient.pk, patient.mrn, "Ada Lovelace")
    assert data["date_of_birth"] == "1980-05-17"
    assert data["status"] == "active"


def test_it_lets_doctors_read_the_patient_index(api_as, doctor, patient):
    response = api_as(doctor.user).get(detail(patient))

    assert response.status_code == 200
    assert response.json()["mrn"] == patient.mrn


def test_it_hides_other_tenants_patients(api_as, staff_user, other_org_patient):
    client = api_as(staff_user)

    assert_error(client.get(detail(other_org_patient)), 404, "not_found")
    assert client.get(LIST + f"?search={other_org_patient.mrn}").json()["results"] == []


@pytest.mark.parametrize("pk", [987654321, "abc"])
def test_it_answers_404_for_an_unknown_patient(api_as, staff_user, pk):
    assert_error(api_as(staff_user).get(detail(pk)), 404, "not_found")


def test_it_shows_a_patient_only_their_own_record(api_as, patient, other_patient):
    client = api_as(patient.user)

    listed = client.get(LIST).json()["results"]
    assert [row["id"] for row in listed] == [patient.pk]
    assert client.get(detail(patient)).status_code == 200
    assert client.get(detail(other_patient)).status_code == 404


def test_it_filters_by_status(api_as, staff_user, org, patient):
    PatientFactory(organization=org, last_name="Gone", status=PatientStatus.INACTIVE)
    client = api_as(staff_user)

    inactive = client.get(LIST + "?status=inactive").json()["results"]
    active = client.get(LIST + "?status=active").json()["results"]

    assert [row["last_name"] for row in inactive] == ["Gone"]
    assert [row["last_name"] for row in active] == ["Lovelace"]


def test_it_refuses_an_unknown_status_filter(api_as, staff_user, patient):
    assert_error(api_as(staff_user).get(LIST + "?status=dead"), 400, field="status")


def test_it_pages_patients(api_as, staff_user, org):
    for _ in range(5):
        PatientFactory(organization=org)

    response = api_as(staff_user).get(LIST + "?page_size=2")

    data = response.json()
    assert data["count"] == 5
    assert len(data["results"]) == 2
    assert "page=2" in data["next"]
    assert data["previous"] is None


def test_it_lists_patients_without_a_query_per_row(
    api_as, django_assert_num_queries, staff_user, org, clinic
):
    for _ in range(3):
        PatientFactory(organization=org, registered_at_clinic=clinic)
    client = api_as(staff_user)
    with CaptureQueriesContext(connection) as three:
        assert len(client.get(LIST).json()["results"]) == 3

    for _ in range(17):
        PatientFactory(organization=org, registered_at_clinic=clinic)
    with django_assert_num_queries(len(three.captured_queries)):
        response = client.get(LIST)
    assert len(response.json()["results"]) == 20


# Registering


def test_it_registers_a_patient_with_a_generated_mrn(api_as, staff_user, org, clinic):
    response = api_as(staff_user).post(LIST, new_patient(registered_at_clinic=clinic.pk))

    assert response.status_code == 201, response.content
    data = response.json()
    patient = Patient.objects.get(pk=data["id"])
    assert patient.organization == org
    assert patient.registered_at_clinic == clinic
    assert patient.mrn == data["mrn"]
    assert data["mrn"].startswith("P")
    assert (data["first_name"], data["insurance_policy_number"], data["status"]) == (
        "Mary",
        "943 476 5919",
        "active",
    )
    assert AuditEvent.objects.filter(action="patient.registered", object_id=str(patient.pk)).exists()


def test_it_gives_each_registration_its_own_mrn(api_as, admin_user, org):
    client = api_as(admin_user)

    first = client.post(LIST, new_patient()).json()["mrn"]
    second = client.post(LIST, new_patient(first_name="Florence", phone="+44 20 7946 0777")).json()["mrn"]

    assert first != second


@pytest.mark.parametrize("role", ["doctor", "patient"])
def test_it_refuses_registration_by_doctors_and_patients(api_as, doctor, patient, role):
    user = doctor.user if role == "doctor" else patient.user
    before = Patient.objects.count()

    response = api_as(user).post(LIST, new_patient())

    assert_error(response, 403, "permission_denied")
    assert Patient.objects.count() == before


def test_it_refuses_a_clinic_the_registrar_does_not_work_at(
    api_as, staff_user, other_clinic, other_org_clinic
):
    client = api_as(staff_user)

    for clinic in (other_clinic, other_org_clinic):
        err = assert_error(client.post(LIST, new_patient(registered_at_clinic=clinic.pk)), 404)
        assert err["fields"] == {"registered_at_clinic": ["Unknown clinic."]}
    assert not Patient.objects.exists()


def test_it_refuses_another_organization_named_in_the_body(api_as, staff_user, other_org):
    err = assert_error(api_as(staff_user).post(LIST, new_patient(organization=other_org.pk)), 404)

    assert "organization" in err["fields"]
    assert not Patient.objects.exists()


def test_it_reports_400s_before_unknown_ids(api_as, staff_user, other_org_clinic):
    response = api_as(staff_user).post(
        LIST, new_patient(registered_at_clinic=other_org_clinic.pk, email="not-an-email")
    )

    assert_error(response, 400, fields={"registered_at_clinic", "email"})


def test_it_asks_a_superuser_without_an_organization_to_choose_one(api_as, superuser, org):
    client = api_as(superuser)

    err = assert_error(client.post(LIST, new_patient()), 400)
    assert "organization" in err["fields"]
    assert not Patient.objects.exists()

    response = client.post(LIST, new_patient(organization=org.pk))
    assert response.status_code == 201
    assert Patient.objects.get().organization == org


def test_it_refuses_a_superusers_clinic_from_another_organization(api_as, superuser, org, other_org_clinic):
    response = api_as(superuser).post(
        LIST, new_patient(organization=org.pk, registered_at_clinic=other_org_clinic.pk)
    )

    assert_error(response, 404, field="registered_at_clinic")
    assert not Patient.objects.exists()


def _years_ago(years):
    today = timezone.localdate()
    return today.replace(year=today.year - years, day=min(today.day, 28))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date_of_birth": str(timezone.localdate() + dt.timedelta(days=1))}, "date_of_birth"),
        ({"date_of_birth": str(_years_ago(151))}, "date_of_birth"),
        ({"date_of_birth": "17/05/1980"}, "date_of_birth"),
        ({"email": "mary-at-example.org"}, "email"),
        ({"sex": "f"}, "sex"),
        ({"first_name": {"given": "Mary"}}, "first_name"),
        ({"first_name": ""}, "first_name"),
        ({"phone": None}, "phone"),
        ({"registered_at_clinic": "central"}, "registered_at_clinic"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"mrn": "P99999999"}, "mrn"),
        ({"status": "inactive"}, "status"),
    ],
)
def test_it_refuses_bad_registration_input(api_as, staff_user, overrides, field):
    response = api_as(staff_user).post(LIST, new_patient(**overrides))

    err = assert_error(response, 400)
    assert field in err["fields"]
    assert err["code"] == "invalid"
    assert not Patient.objects.exists()


def test_it_requires_names_and_date_of_birth(api_as, staff_user):
    err = assert_error(api_as(staff_user).post(LIST, {"sex": "male"}), 400)

    assert {"first_name", "last_name", "date_of_birth"} <= set(err["fields"])
    assert not Patient.objects.exists()


def test_it_refuses_malformed_json(api_as, staff_user):
    response = api_as(staff_user).post(LIST, data='{"first_name": "Mary",', content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert not Patient.objects.exists()


def test_it_refuses_a_body_that_is_not_an_object(api_as, staff_user):
    response = api_as(staff_user).post(LIST, data=[new_patient()], format="json")

    assert_error(response, 400, "invalid")
    assert not Patient.objects.exists()


def test_it_answers_401_to_anonymous_registration(api):
    assert api.post(LIST, new_patient(), format="json").status_code == 401
    assert not Patient.objects.exists()


# Editing


def test_it_updates_a_patient_partially(api_as, staff_user, patient):
    response = api_as(staff_user).patch(
        detail(patient), {"phone": "020 7946 0123", "address": "12 Marylebone"}
    )

    assert response.status_code == 200, response.content
    # A national number is read in the region of the organization's clinic (GB) and kept in E.164; its
    # blind index (last 7 digits) is the one the national spelling searches with.
    assert response.json()["phone"] == "+442079460123"
    patient.refresh_from_db()
    assert (patient.phone, patient.phone_index, patient.address) == (
        "+442079460123",
        blind_index("phone", "02079460123"),
        "12 Marylebone",
    )
    assert patient.first_name == "Ada"


def test_it_takes_back_what_it_gave_on_put(api_as, admin_user, patient):
    client = api_as(admin_user)
    body = client.get(detail(patient)).json()
    body["last_name"] = "King"

    response = client.put(detail(patient), body)

    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert patient.last_name == "King"


def test_it_requires_the_whole_record_on_put(api_as, staff_user, patient):
    err = assert_error(api_as(staff_user).put(detail(patient), {"phone": "123"}), 400)

    assert "first_name" in err["fields"]
    patient.refresh_from_db()
    assert patient.phone != "123"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"email": "nope"}, "email"),
        ({"sex": "robot"}, "sex"),
        ({"mrn": "P00000042"}, "mrn"),
        ({"status": "inactive"}, "status"),
        ({"registered_at_clinic": 12345}, "registered_at_clinic"),
        ({"nickname": "Countess"}, "nickname"),
    ],
)
def test_it_refuses_bad_edits_and_keeps_the_record(api_as, staff_user, patient, body, field):
    before = Patient.objects.values().get(pk=patient.pk)

    err = assert_error(api_as(staff_user).patch(detail(patient), body), 400)

    assert field in err["fields"]
    assert Patient.objects.values().get(pk=patient.pk) == before


@pytest.mark.parametrize("role", ["doctor", "patient"])
def test_it_refuses_edits_by_doctors_and_patients(api_as, doctor, patient, role):
    user = doctor.user if role == "doctor" else patient.user

    response = api_as(user).patch(detail(patient), {"last_name": "Byron"})

    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.last_name == "Lovelace"


def test_it_hides_other_tenants_patients_from_edits(api_as, admin_user, other_org_patient):
    response = api_as(admin_user).patch(detail(other_org_patient), {"last_name": "Byron"})

    assert response.status_code == 404
    other_org_patient.refresh_from_db()
    assert other_org_patient.last_name == "Turing"


def test_it_never_deletes_a_patient(api_as, admin_user, patient):
    response = api_as(admin_user).delete(detail(patient))

    assert response.status_code == 405
    assert Patient.objects.filter(pk=patient.pk).exists()


# Deactivating


def test_it_deactivates_and_reactivates_a_patient(api_as, staff_user, patient):
    client = api_as(staff_user)

    response = client.post(detail(patient, "deactivate/"))
    assert response.status_code == 200
    assert response.json()["status"] == "inactive"
    patient.refresh_from_db()
    assert patient.status == PatientStatus.INACTIVE

    response = client.post(detail(patient, "reactivate/"))
    assert response.json()["status"] == "active"
    patient.refresh_from_db()
    assert patient.status == PatientStatus.ACTIVE
    assert set(AuditEvent.objects.filter(object_id=str(patient.pk)).values_list("action", flat=True)) >= {
        "patient.inactive",
        "patient.active",
    }


@pytest.mark.parametrize("role", ["doctor", "patient"])
def test_it_refuses_deactivation_by_doctors_and_patients(api_as, doctor, patient, role):
    user = doctor.user if role == "doctor" else patient.user

    assert api_as(user).post(detail(patient, "deactivate/")).status_code == 403
    patient.refresh_from_db()
    assert patient.status == PatientStatus.ACTIVE


def test_it_hides_other_tenants_patients_from_deactivation(api_as, staff_user, other_org_patient):
    assert api_as(staff_user).post(detail(other_org_patient, "deactivate/")).status_code == 404
    other_org_patient.refresh_from_db()
    assert other_org_patient.status == PatientStatus.ACTIVE


# Possible duplicates (#17)


def test_it_answers_409_possible_duplicate_with_the_candidates_and_registers_nothing(
    api_as, staff_user, clinic
):
    client = api_as(staff_user)
    first = client.post(LIST, new_patient(registered_at_clinic=clinic.pk)).json()

    response = client.post(LIST, new_patient(first_name="mary ", last_name="SEACOLE", phone=""))

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "possible_duplicate"
    assert error["fields"] == {"confirm_new_patient": ["Confirm that this is a new patient."]}
    assert error["candidates"] == [
        {
            "id": first["id"],
            "mrn": first["mrn"],
            "full_name": "Mary Seacole",
            "date_of_birth": "1985-11-23",
            "clinic": clinic.name,
            "reasons": ["name_and_date_of_birth"],
        }
    ]
    assert Patient.objects.count() == 1


def test_it_registers_a_look_alike_when_the_caller_confirms_a_new_patient(api_as, staff_user):
    client = api_as(staff_user)
    client.post(LIST, new_patient())

    response = client.post(LIST, new_patient(first_name="Marie", confirm_new_patient=True))

    assert response.status_code == 201, response.content
    assert "confirm_new_patient" not in response.json()
    assert Patient.objects.count() == 2
