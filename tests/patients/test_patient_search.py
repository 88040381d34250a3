import pytest

from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org, other_org, clinic):  # the clinic: national numbers are read in its region (GB)
    return {
        "ann": PatientFactory(
            organization=org, first_name="Ann", last_name="Smith", phone="+44 20 7946 0018"
        ),
        "annabel": PatientFactory(
            organization=org, first_name="Annabel", last_name="Smithers", phone="07700 900123"
        ),
        "john": PatientFactory(organization=org, first_name="John", last_name="Annan", phone="0161 496 0000"),
        "bob": PatientFactory(organization=org, first_name="Bob", last_name="Jones", phone="0113 496 0555"),
        "elsewhere": PatientFactory(
            organization=other_org, first_name="Ann", last_name="Smith", phone="+44 20 7946 0018"
        ),
    }


def found(client, term):
    response = client.get("/api/v1/patients/", {"search": term})
    assert response.status_code == 200
    return {(row["first_name"], row["last_name"]) for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ann", {("Ann", "Smith"), ("Annabel", "Smithers"), ("John", "Annan")}),
        ("ANN SMI", {("Ann", "Smith"), ("Annabel", "Smithers")}),
        ("smithe", {("Annabel", "Smithers")}),
        ("jOnEs", {("Bob", "Jones")}),
        ("xyz", set()),
    ],
)
def test_it_finds_patients_by_the_start_of_their_names_in_any_case(
    api_as, staff_user, people, term, expected
):
    assert found(api_as(staff_user), term) == expected


@pytest.mark.parametrize("term", ["+44 20 7946 0018", "442079460018", "020 7946 0018", "7946-0018"])
def test_it_finds_patients_by_phone_number_however_written(api_as, staff_user, people, term):
    assert found(api_as(staff_user), term) == {("Ann", "Smith")}


def test_it_no_longer_finds_a_phone_number_by_its_beginning(api_as, staff_user, people):
    # The number is encrypted; its blind index holds the last 7 digits, so a search needs the end.
    assert found(api_as(staff_user), "44-20-7946") == set()


def test_it_finds_a_patient_by_mrn_in_any_case(api_as, staff_user, people):
    mrn = people["bob"].mrn

    assert found(api_as(staff_user), mrn.lower()) == {("Bob", "Jones")}


def test_it_does_not_match_part_of_an_mrn(api_as, staff_user, people):
    assert found(api_as(staff_user), people["bob"].mrn[:-1]) == set()


def test_it_searches_only_the_users_organization(api_as, staff_user, people):
    results = api_as(staff_user).get("/api/v1/patients/", {"search": "ann smith"}).json()["results"]

    assert people["elsewhere"].pk not in {row["id"] for row in results}
    assert len(results) == 2


def test_it_searches_only_a_patients_own_record(api_as, patient, people):
    assert found(api_as(patient.user), "ann") == set()
    assert found(api_as(patient.user), "ada") == {("Ada", "Lovelace")}


def test_it_combines_search_with_status(api_as, staff_user, org, people):
    PatientFactory(organization=org, first_name="Anna", last_name="Gone", status="inactive")
    client = api_as(staff_user)

    assert ("Anna", "Gone") in found(client, "ann")
    response = client.get("/api/v1/patients/", {"search": "ann", "status": "inactive"})
    assert [row["last_name"] for row in response.json()["results"]] == ["Gone"]
