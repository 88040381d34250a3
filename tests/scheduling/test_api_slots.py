import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduling.models import ApprovalStatus
from tests.conftest import assert_error
from tests.factories import ClinicFactory, DepartmentFactory, DoctorFactory, SlotFactory

pytestmark = pytest.mark.django_db

SLOTS = "/api/v1/slots/"


def local_time(clinic, *, days: int, hour: int, minute: int = 0) -> dt.datetime:
    day = timezone.localdate(timezone=clinic.tz) + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=clinic.tz)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_it_shows_a_slot_in_utc_with_the_clinic_local_time_and_zone(
    api_as, admin_user, other_clinic, other_clinic_department, other_clinic_doctor
):
    # 00:30 in Paris is the previous day in UTC: `date` is the clinic's day, `start` is UTC.
    start = local_time(other_clinic, days=3, hour=0, minute=30)
    slot = SlotFactory(
        doctor=other_clinic_doctor, department=other_clinic_department, start=start, capacity=3
    )

    response = api_as(admin_user).get(f"{SLOTS}{slot.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": slot.pk,
        "doctor": {"id": other_clinic_doctor.pk, "name": other_clinic_doctor.display_name},
        "department": {"id": other_clinic_department.pk, "name": "Cardiology"},
        "clinic": {"id": other_clinic.pk, "name": "Riverside North", "time_zone": "Europe/Paris"},
        "date": start.date().isoformat(),
        "start": utc_iso(start),
        "end": utc_iso(start + dt.timedelta(minutes=15)),
        "local_start": start.isoformat(),
        "time_zone": "Europe/Paris",
        "capacity": 3,
        "booked_count": 0,
        "seats_left": 3,
        "is_active": True,
    }
    assert body["start"][:10] != body["date"]


def test_it_refuses_anonymous_users(api, slot):
    response = api.get(SLOTS)

    assert_error(response, 401, "not_authenticated")


def test_it_shows_staff_only_the_slots_of_their_clinics(
    api_as,
    staff_user,
    slot,
    other_clinic_doctor,
    other_clinic_department,
    other_org_doctor,
    other_org_department,
):
    north = SlotFactory(doctor=other_clinic_doctor, department=other_clinic_department)
    SlotFactory(doctor=other_org_doctor, department=other_org_department)

    client = api_as(staff_user)

    assert ids(client.get(SLOTS)) == [slot.pk]
    assert client.get(f"{SLOTS}{north.pk}/").status_code == 404


def test_it_shows_admins_every_clinic_of_their_organization_and_nothing_else(
    api_as,
    admin_user,
    slot,
    other_clinic_doctor,
    other_clinic_department,
    other_org_doctor,
    other_org_department,
):
    north = SlotFactory(doctor=other_clinic_doctor, department=other_clinic_department)
    foreign = SlotFactory(doctor=other_org_doctor, department=other_org_department)

    client = api_as(admin_user)

    assert sorted(ids(client.get(SLOTS))) == sorted([slot.pk, north.pk])
    response = client.get(f"{SLOTS}{foreign.pk}/")
    assert_error(response, 404, "not_found")


def test_it_shows_doctors_the_slots_of_the_clinics_they_work_at(
    api_as, doctor, slot, other_clinic_doctor, other_clinic_department
):
    SlotFactory(doctor=other_clinic_doctor, department=other_clinic_department)

    assert ids(api_as(doctor.user).get(SLOTS)) == [slot.pk]


def test_it_shows_patients_only_open_future_slots_of_their_organizations_active_clinics(
    api_as, org, patient, doctor, department, other_org_doctor, other_org_department
):
    open_slot = SlotFactory(doctor=doctor, department=department)
    full = SlotFactory(doctor=doctor, department=department, booked_count=1)
    SlotFactory(doctor=doctor, department=department, start=timezone.now() - dt.timedelta(hours=2))
    SlotFactory(doctor=doctor, department=department, is_active=False)
    suspended = DoctorFactory(
        user__organization=org, departments=[department], approval_status=ApprovalStatus.SUSPENDED
    )
    SlotFactory(doctor=suspended, department=department)
    closed_clinic = ClinicFactory(organization=org, is_active=False)
    SlotFactory(department=DepartmentFactory(clinic=closed_clinic))
    SlotFactory(doctor=other_org_doctor, department=other_org_department)

    # A full slot is still shown (with no seats left) so the patient sees the day as it is.
    assert sorted(ids(api_as(patient.user).get(SLOTS))) == sorted([open_slot.pk, full.pk])


def test_it_filters_by_doctor(api_as, admin_user, org, doctor, department):
    mine = SlotFactory(doctor=doctor, department=department)
    SlotFactory(department=department)

    assert ids(api_as(admin_user).get(SLOTS, {"doctor": doctor.pk})) == [mine.pk]


def test_it_filters_by_department(api_as, admin_user, clinic, department):
    wanted = SlotFactory(department=department)
    SlotFactory(department=DepartmentFactory(clinic=clinic))

    assert ids(api_as(admin_user).get(SLOTS, {"department": department.pk})) == [wanted.pk]


def test_it_filters_by_clinic(
    api_as, admin_user, slot, other_clinic_doctor, other_clinic_department, other_clinic
):
    north = SlotFactory(doctor=other_clinic_doctor, department=other_clinic_department)

    assert ids(api_as(admin_user).get(SLOTS, {"clinic": other_clinic.pk})) == [north.pk]


def test_it_filters_by_the_clinic_local_day(
    api_as, admin_user, other_clinic, other_clinic_department, other_clinic_doctor
):
    # Both start on the same UTC day; in Paris the second is already the next day.
    evening = SlotFactory(
        doctor=other_clinic_doctor,
        department=other_clinic_department,
        start=local_time(other_clinic, days=3, hour=20),
    )
    after_midnight = SlotFactory(
        doctor=other_clinic_doctor,
        department=other_clinic_department,
        start=local_time(other_clinic, days=4, hour=0, minute=30),
    )
    day = evening.date
    client = api_as(admin_user)

    assert ids(client.get(SLOTS, {"date_from": day + dt.timedelta(days=1)})) == [after_midnight.pk]
    assert ids(client.get(SLOTS, {"date_to": day})) == [evening.pk]
    assert ids(client.get(SLOTS, {"date_from": day, "date_to": day})) == [evening.pk]


def test_available_true_hides_full_past_inactive_and_unapproved_doctors_slots(
    api_as, admin_user, org, doctor, department
):
    bookable = SlotFactory(doctor=doctor, department=department, capacity=2, booked_count=1)
    full = SlotFactory(doctor=doctor, department=department, capacity=1, booked_count=1)
    past = SlotFactory(doctor=doctor, department=department, start=timezone.now() - dt.timedelta(hours=1))
    inactive = SlotFactory(doctor=doctor, department=department, is_active=False)
    pending = DoctorFactory(
        user__organization=org, departments=[department], approval_status=ApprovalStatus.PENDING
    )
    unapproved = SlotFactory(doctor=pending, department=department)
    client = api_as(admin_user)

    assert ids(client.get(SLOTS, {"available": "true"})) == [bookable.pk]
    assert sorted(ids(client.get(SLOTS, {"available": "false"}))) == sorted(
        [full.pk, past.pk, inactive.pk, unapproved.pk]
    )
    assert len(ids(client.get(SLOTS))) == 5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("doctor", "abc"),
        ("department", "1.5"),
        ("clinic", "x"),
        ("date_from", "2030-13-01"),
        ("date_to", "yesterday"),
        ("available", "maybe"),
    ],
)
def test_it_refuses_a_malformed_filter_naming_it(api_as, admin_user, param, value):
    response = api_as(admin_user).get(SLOTS, {param: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [param]


def test_it_paginates_with_page_and_page_size(api_as, admin_user, doctor, department):
    slots = [SlotFactory(doctor=doctor, department=department) for _ in range(5)]
    client = api_as(admin_user)

    first = client.get(SLOTS, {"page_size": 2}).json()
    last = client.get(SLOTS, {"page_size": 2, "page": 3}).json()

    assert first["count"] == 5
    assert [row["id"] for row in first["results"]] == [s.pk for s in slots[:2]]
    assert "page=2" in first["next"]
    assert [row["id"] for row in last["results"]] == [slots[4].pk]
    assert last["next"] is None
    assert client.get(SLOTS, {"page_size": 2, "page": 4}).status_code == 404


def test_it_is_read_only(api_as, admin_user, slot):
    client = api_as(admin_user)

    assert client.post(SLOTS, {"capacity": 5}, format="json").status_code == 405
    assert client.patch(f"{SLOTS}{slot.pk}/", {"capacity": 5}, format="json").status_code == 405
    assert client.delete(f"{SLOTS}{slot.pk}/").status_code == 405


def test_a_page_of_twenty_slots_costs_the_same_queries_as_three(
    api_as, admin_user, department, django_assert_num_queries
):
    for _ in range(3):
        SlotFactory(department=department)  # each with its own doctor
    client = api_as(admin_user)
    with CaptureQueriesContext(connection) as three:
        assert len(ids(client.get(SLOTS))) == 3
    for _ in range(17):
        SlotFactory(department=department)

    with django_assert_num_queries(len(three)):
        assert len(ids(client.get(SLOTS))) == 20


def test_the_listing_shows_each_slot_exactly_as_showing_that_slot_does(
    api_as, admin_user, org, other_clinic, department, other_clinic_department, doctor, other_clinic_doctor
):
    # The listing builds its rows from values, not through SlotSerializer: the same fields, the same
    # formats, in every case the serializer handles (another zone, a start with microseconds, a full slot,
    # a withdrawn one, a doctor without a full name).
    nameless = DoctorFactory(
        user__first_name="",
        user__last_name="",
        user__username="locum7",
        user__organization=org,
        departments=[department],
    )
    slots = [
        SlotFactory(doctor=doctor, department=department, capacity=2, booked_count=2),
        SlotFactory(
            doctor=other_clinic_doctor,
            department=other_clinic_department,
            start=local_time(other_clinic, days=2, hour=0, minute=30).replace(microsecond=123456),
        ),
        SlotFactory(doctor=doctor, department=department, is_active=False),
        SlotFactory(doctor=nameless, department=department),
    ]
    client = api_as(admin_user)

    listed = {row["id"]: row for row in client.get(SLOTS, {"page_size": 200}).json()["results"]}

    assert set(listed) == {slot.pk for slot in slots}
    for slot in slots:
        assert listed[slot.pk] == client.get(f"{SLOTS}{slot.pk}/").json()
    assert listed[slots[3].pk]["doctor"]["name"] == "Dr locum7"


def test_a_list_that_fits_on_its_first_page_is_not_counted_separately(api_as, admin_user, doctor, department):
    for _ in range(3):
        SlotFactory(doctor=doctor, department=department)
    client = api_as(admin_user)

    with CaptureQueriesContext(connection) as read:
        body = client.get(SLOTS, {"doctor": doctor.pk}).json()

    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert not [q for q in read.captured_queries if "COUNT(" in q["sql"].upper()]
    assert client.get(SLOTS, {"doctor": doctor.pk, "page_size": 2}).json()["count"] == 3


def test_a_longer_first_page_is_read_once_and_counted_once(api_as, admin_user, doctor, department):
    slots = [SlotFactory(doctor=doctor, department=department) for _ in range(5)]
    client = api_as(admin_user)

    with CaptureQueriesContext(connection) as read:
        body = client.get(SLOTS, {"doctor": doctor.pk, "page_size": 2}).json()

    assert body["count"] == 5
    assert [row["id"] for row in body["results"]] == [s.pk for s in slots[:2]]
    assert "page=2" in body["next"]
    assert body["previous"] is None
    slot_reads = [q["sql"] for q in read.captured_queries if "scheduling_slot" in q["sql"]]
    assert len([sql for sql in slot_reads if "COUNT(" in sql.upper()]) == 1
    assert len([sql for sql in slot_reads if "COUNT(" not in sql.upper()]) == 1
