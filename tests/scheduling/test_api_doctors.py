import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opd.core.models import AuditEvent
from scheduling.models import ApprovalStatus, AvailabilityException, AvailabilityRule, Doctor, Slot
from tests.conftest import assert_error
from tests.factories import DepartmentFactory, DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

DOCTORS = "/api/v1/doctors/"


def url(doctor, suffix=""):
    return f"{DOCTORS}{getattr(doctor, 'pk', doctor)}/{suffix}"


def usernames(response):
    assert response.status_code == 200, response.content
    return {row["display_name"] for row in response.json()["results"]}


def query_count(client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def make_doctor(department, username, **kwargs):
    return DoctorFactory(
        user__username=username,
        user__first_name=username.title(),
        user__last_name="Doe",
        user__organization=department.clinic.organization,
        departments=[department],
        **kwargs,
    )


@pytest.fixture
def north_doctor(other_clinic_department):
    return make_doctor(other_clinic_department, "north")


@pytest.fixture
def pending_doctor(department):
    return make_doctor(department, "pending", approval_status=ApprovalStatus.PENDING)


@pytest.fixture
def colleague(department):
    """Another doctor at the same clinic: sees dr-house, may not change their schedule."""
    return make_doctor(department, "colleague")


# Doctors


def test_it_shows_an_admin_every_doctor_of_the_organization(
    api_as, admin_user, doctor, north_doctor, pending_doctor, other_org_doctor
):
    response = api_as(admin_user).get(DOCTORS)

    assert {row["id"] for row in response.json()["results"]} == {
        doctor.pk,
        north_doctor.pk,
        pending_doctor.pk,
    }


def test_it_lists_doctors_with_departments_and_approval(api_as, staff_user, doctor, department):
    row = api_as(staff_user).get(url(doctor)).json()

    assert row["specialization"] == "General practice"
    assert row["approval_status"] == "approved"
    assert row["departments"] == [
        {
            "id": department.pk,
            "name": "General medicine",
            "clinic": department.clinic_id,
            "clinic_name": "Riverside Central",
        }
    ]
    assert row["display_name"] == str(doctor)


def test_it_shows_staff_the_doctors_of_their_clinics(
    api_as, staff_user, other_clinic_staff, doctor, north_doctor
):
    assert {r["id"] for r in api_as(staff_user).get(DOCTORS).json()["results"]} == {doctor.pk}
    assert {r["id"] for r in api_as(other_clinic_staff).get(DOCTORS).json()["results"]} == {north_doctor.pk}
    assert api_as(other_clinic_staff).get(url(doctor)).status_code == 404


def test_it_shows_a_doctor_their_colleagues_and_themself(api_as, doctor, colleague, north_doctor):
    ids = {r["id"] for r in api_as(doctor.user).get(DOCTORS).json()["results"]}

    assert ids == {doctor.pk, colleague.pk}


def test_it_shows_patients_only_approved_doctors(
    api_as, patient, doctor, north_doctor, pending_doctor, other_org_doctor
):
    client = api_as(patient.user)

    ids = {r["id"] for r in client.get(DOCTORS).json()["results"]}

    assert ids == {doctor.pk, north_doctor.pk}
    assert client.get(url(pending_doctor)).status_code == 404


@pytest.mark.parametrize("who", ["admin_user", "staff_user", "patient"])
def test_it_hides_other_tenants_doctors(api_as, request, other_org_doctor, who):
    user = request.getfixturevalue(who)
    user = getattr(user, "user", None) or user

    assert_error(api_as(user).get(url(other_org_doctor)), 404, "not_found")


def test_it_filters_doctors_by_department_clinic_and_approval(
    api_as,
    admin_user,
    doctor,
    north_doctor,
    pending_doctor,
    department,
    other_clinic_department,
    other_clinic,
):
    client = api_as(admin_user)

    def ids(query):
        return {r["id"] for r in client.get(DOCTORS + query).json()["results"]}

    assert ids(f"?department={department.pk}") == {doctor.pk, pending_doctor.pk}
    assert ids(f"?clinic={other_clinic.pk}") == {north_doctor.pk}
    assert ids("?approval_status=pending") == {pending_doctor.pk}
    assert ids(f"?department={department.pk}&approval_status=approved") == {doctor.pk}


def test_it_lists_a_doctor_in_two_matching_departments_once(api_as, admin_user, doctor, clinic):
    doctor.departments.add(DepartmentFactory(clinic=clinic))

    response = api_as(admin_user).get(f"{DOCTORS}?clinic={clinic.pk}")

    assert [r["id"] for r in response.json()["results"]] == [doctor.pk]
    assert len(response.json()["results"][0]["departments"]) == 2


def test_it_refuses_an_unknown_approval_filter(api_as, admin_user, doctor):
    assert_error(api_as(admin_user).get(DOCTORS + "?approval_status=retired"), 400, field="approval_status")


def test_it_pages_doctors(api_as, admin_user, doctor, colleague, pending_doctor):
    data = api_as(admin_user).get(DOCTORS + "?page_size=2").json()

    assert data["count"] == 3
    assert len(data["results"]) == 2
    assert "page=2" in data["next"]


def test_it_lists_doctors_without_a_query_per_row(
    api_as, django_assert_num_queries, staff_user, clinic, department
):
    second = DepartmentFactory(clinic=clinic)
    for n in range(3):
        make_doctor(department, f"doc{n}").departments.add(second)
    client = api_as(staff_user)
    expected = query_count(client, DOCTORS)

    for n in range(3, 20):
        make_doctor(department, f"doc{n}").departments.add(second)
    with django_assert_num_queries(expected):
        response = client.get(DOCTORS)
    assert len(response.json()["results"]) == 20


# Approval


def test_it_lets_an_admin_approve_and_suspend_a_doctor(api_as, admin_user, pending_doctor):
    client = api_as(admin_user)

    response = client.post(url(pending_doctor, "approve/"))
    assert response.status_code == 200
    assert response.json()["approval_status"] == "approved"
    pending_doctor.refresh_from_db()
    assert pending_doctor.approval_status == ApprovalStatus.APPROVED
    assert pending_doctor.approved_at is not None

    response = client.post(url(pending_doctor, "suspend/"))
    assert response.json()["approval_status"] == "suspended"
    pending_doctor.refresh_from_db()
    assert pending_doctor.approval_status == ApprovalStatus.SUSPENDED
    assert AuditEvent.objects.filter(action="doctor.suspended", object_id=str(pending_doctor.pk)).exists()


@pytest.mark.parametrize("who", ["staff_user", "doctor", "patient"])
def test_it_refuses_approval_by_anyone_but_an_admin(api_as, request, pending_doctor, who):
    user = request.getfixturevalue(who)
    user = getattr(user, "user", None) or user

    assert_error(api_as(user).post(url(pending_doctor, "approve/")), 403, "permission_denied")
    pending_doctor.refresh_from_db()
    assert pending_doctor.approval_status == ApprovalStatus.PENDING


def test_it_hides_other_tenants_doctors_from_approval(api_as, admin_user, other_org_doctor):
    assert api_as(admin_user).post(url(other_org_doctor, "suspend/")).status_code == 404
    other_org_doctor.refresh_from_db()
    assert other_org_doctor.approval_status == ApprovalStatus.APPROVED


def test_it_does_not_let_doctors_be_changed_directly(api_as, admin_user, doctor):
    response = api_as(admin_user).patch(url(doctor), {"approval_status": "suspended"})

    assert response.status_code == 405
    doctor.refresh_from_db()
    assert doctor.approval_status == ApprovalStatus.APPROVED


# Availability rules


def tomorrow():
    return timezone.localdate() + dt.timedelta(days=1)


def rule_body(department, /, **overrides):
    return {
        "department": department.pk,
        "weekday": tomorrow().weekday(),
        "start_time": "09:00",
        "end_time": "12:00",
        "slot_minutes": 20,
        "capacity": 1,
        **overrides,
    }


def make_rule(doctor, department, weekday=0, hour=9, **kwargs):
    return AvailabilityRule.objects.create(
        doctor=doctor,
        department=department,
        weekday=weekday,
        start_time=dt.time(hour),
        end_time=dt.time(hour, 30),
        valid_from=timezone.localdate(),
        **kwargs,
    )


@pytest.mark.parametrize("who", ["doctor", "staff_user", "admin_user"])
def test_it_adds_a_weekly_session_and_opens_its_slots(api_as, request, doctor, department, who):
    user = request.getfixturevalue(who)
    user = getattr(user, "user", None) or user

    response = api_as(user).post(url(doctor, "availability/"), rule_body(department))

    assert response.status_code == 201, response.content
    data = response.json()
    rule = AvailabilityRule.objects.get(pk=data["id"])
    assert (rule.doctor, rule.department, rule.start_time) == (doctor, department, dt.time(9))
    assert data["department_name"] == "General medicine"
    assert data["valid_from"] == str(timezone.localdate())
    # Three hours in 20-minute slots on tomorrow's weekday, inside the planning horizon.
    assert Slot.objects.filter(doctor=doctor, date=tomorrow(), is_active=True).count() == 9


def test_it_lists_and_shows_a_doctors_weekly_sessions(api_as, staff_user, doctor, colleague, department):
    mine = make_rule(doctor, department, weekday=1)
    make_rule(colleague, department, weekday=1)
    client = api_as(staff_user)

    listed = client.get(url(doctor, "availability/")).json()["results"]
    shown = client.get(url(doctor, f"availability/{mine.pk}/")).json()

    assert [row["id"] for row in listed] == [mine.pk]
    assert (shown["weekday"], shown["start_time"], shown["end_time"]) == (1, "09:00:00", "09:30:00")


def test_it_hides_another_doctors_session_under_this_doctor(
    api_as, admin_user, doctor, colleague, department
):
    theirs = make_rule(colleague, department)
    client = api_as(admin_user)

    assert client.get(url(doctor, f"availability/{theirs.pk}/")).status_code == 404
    assert client.delete(url(doctor, f"availability/{theirs.pk}/")).status_code == 404
    assert AvailabilityRule.objects.filter(pk=theirs.pk).exists()


def test_it_refuses_schedules_to_patients(api_as, patient, doctor, department):
    rule = make_rule(doctor, department)
    client = api_as(patient.user)

    assert client.get(url(doctor, "availability/")).status_code == 403
    assert client.get(url(doctor, "exceptions/")).status_code == 403
    assert_error(client.post(url(doctor, "availability/"), rule_body(department)), 403, "permission_denied")
    assert client.delete(url(doctor, f"availability/{rule.pk}/")).status_code == 403
    assert AvailabilityRule.objects.count() == 1


def test_it_refuses_a_colleagues_changes_to_a_doctors_schedule(api_as, doctor, colleague, department):
    client = api_as(colleague.user)

    assert client.get(url(doctor, "availability/")).status_code == 200
    assert client.post(url(doctor, "availability/"), rule_body(department)).status_code == 403
    assert not AvailabilityRule.objects.exists()


def test_it_hides_doctors_of_other_clinics_and_tenants_from_schedules(
    api_as, other_clinic_staff, staff_user, doctor, other_org_doctor, department
):
    assert (
        api_as(other_clinic_staff).post(url(doctor, "availability/"), rule_body(department)).status_code
        == 404
    )
    assert api_as(other_clinic_staff).get(url(doctor, "availability/")).status_code == 404
    assert api_as(staff_user).get(url(other_org_doctor, "availability/")).status_code == 404
    assert api_as(staff_user).get(url(987654, "exceptions/")).status_code == 404
    assert not AvailabilityRule.objects.exists()


def test_it_refuses_a_department_the_user_cannot_see(
    api_as, staff_user, doctor, other_clinic_department, other_org_department
):
    doctor.departments.add(other_clinic_department)
    client = api_as(staff_user)

    for dept in (other_clinic_department, other_org_department):
        err = assert_error(client.post(url(doctor, "availability/"), rule_body(dept)), 404)
        assert err["fields"] == {"department": ["Unknown department."]}
    assert not AvailabilityRule.objects.exists()


def test_it_refuses_a_department_the_doctor_does_not_work_in(api_as, staff_user, doctor, clinic):
    elsewhere = DepartmentFactory(clinic=clinic, name="Dermatology")

    err = assert_error(api_as(staff_user).post(url(doctor, "availability/"), rule_body(elsewhere)), 400)

    assert "department" in err["fields"]
    assert not AvailabilityRule.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"end_time": "08:00"}, "end_time"),
        ({"start_time": "9am"}, "start_time"),
        ({"weekday": 7}, "weekday"),
        ({"slot_minutes": 2}, "slot_minutes"),
        ({"slot_minutes": 240, "end_time": "10:00"}, "slot_minutes"),
        ({"capacity": 0}, "capacity"),
        ({"valid_from": "2030-01-10", "valid_to": "2030-01-01"}, "valid_to"),
        ({"department": None}, "department"),
        ({"department": "gen"}, "department"),
        ({"room": "4B"}, "room"),
    ],
)
def test_it_refuses_bad_sessions(api_as, doctor, department, overrides, field):
    response = api_as(doctor.user).post(url(doctor, "availability/"), rule_body(department, **overrides))

    assert_error(response, 400, field=field)
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.exists()


def test_it_refuses_an_overlapping_session(api_as, doctor, department):
    client = api_as(doctor.user)
    assert client.post(url(doctor, "availability/"), rule_body(department)).status_code == 201

    response = client.post(
        url(doctor, "availability/"), rule_body(department, start_time="11:00", end_time="13:00")
    )

    assert_error(response, 409, "overlap")
    assert AvailabilityRule.objects.count() == 1


def test_it_changes_a_weekly_session(api_as, staff_user, doctor, department):
    client = api_as(staff_user)
    rule_id = client.post(url(doctor, "availability/"), rule_body(department)).json()["id"]

    response = client.patch(url(doctor, f"availability/{rule_id}/"), {"end_time": "10:00", "capacity": 3})

    assert response.status_code == 200, response.content
    assert (response.json()["end_time"], response.json()["capacity"]) == ("10:00:00", 3)
    rule = AvailabilityRule.objects.get(pk=rule_id)
    assert (rule.start_time, rule.end_time, rule.capacity) == (dt.time(9), dt.time(10), 3)
    slots = Slot.objects.filter(doctor=doctor, date=tomorrow(), is_active=True)
    assert slots.count() == 3
    assert set(slots.values_list("capacity", flat=True)) == {3}


def test_it_refuses_a_bad_change_and_keeps_the_session(api_as, staff_user, doctor, department):
    rule = make_rule(doctor, department)

    response = api_as(staff_user).patch(url(doctor, f"availability/{rule.pk}/"), {"start_time": "10:00"})

    assert_error(response, 400, field="end_time")
    rule.refresh_from_db()
    assert rule.start_time == dt.time(9)


def test_it_refuses_a_change_by_a_patient(api_as, patient, doctor, department):
    rule = make_rule(doctor, department)

    assert (
        api_as(patient.user).patch(url(doctor, f"availability/{rule.pk}/"), {"capacity": 5}).status_code
        == 403
    )
    rule.refresh_from_db()
    assert rule.capacity == 1


def test_it_removes_a_weekly_session_and_closes_its_slots(api_as, doctor, department):
    client = api_as(doctor.user)
    rule_id = client.post(url(doctor, "availability/"), rule_body(department)).json()["id"]
    assert Slot.objects.filter(doctor=doctor, is_active=True).exists()

    response = client.delete(url(doctor, f"availability/{rule_id}/"))

    assert response.status_code == 204
    assert not AvailabilityRule.objects.filter(pk=rule_id).exists()
    assert not Slot.objects.filter(doctor=doctor, is_active=True).exists()


def test_it_does_not_replace_a_session_wholesale(api_as, doctor, department):
    rule = make_rule(doctor, department)

    response = api_as(doctor.user).put(url(doctor, f"availability/{rule.pk}/"), rule_body(department))

    assert response.status_code == 405


def test_it_lists_sessions_without_a_query_per_row(
    api_as, django_assert_num_queries, staff_user, doctor, department
):
    for hour in range(3):
        make_rule(doctor, department, weekday=0, hour=hour)
    client = api_as(staff_user)
    expected = query_count(client, url(doctor, "availability/"))

    for n in range(3, 20):
        make_rule(doctor, department, weekday=n % 7, hour=n)
    with django_assert_num_queries(expected):
        response = client.get(url(doctor, "availability/"))
    assert len(response.json()["results"]) == 20


def test_it_pages_sessions(api_as, doctor, department):
    for weekday in range(3):
        make_rule(doctor, department, weekday=weekday)

    data = api_as(doctor.user).get(url(doctor, "availability/?page_size=2")).json()

    assert len(data["results"]) == 2
    assert "page=2" in data["next"]


# Availability exceptions


def leave_body(**overrides):
    return {"kind": "leave", "date": str(tomorrow()), "reason": "Conference", **overrides}


def test_it_records_leave_and_closes_that_days_slots(api_as, doctor, department):
    client = api_as(doctor.user)
    client.post(url(doctor, "availability/"), rule_body(department))

    response = client.post(url(doctor, "exceptions/"), leave_body())

    assert response.status_code == 201, response.content
    exception = AvailabilityException.objects.get(pk=response.json()["id"])
    assert (exception.kind, exception.date, exception.doctor) == ("leave", tomorrow(), doctor)
    assert response.json()["department_name"] is None
    assert not Slot.objects.filter(doctor=doctor, date=tomorrow(), is_active=True).exists()


def test_it_adds_an_extra_session(api_as, staff_user, doctor, department):
    body = {
        "kind": "extra",
        "date": str(tomorrow()),
        "start_time": "18:00",
        "end_time": "19:00",
        "department": department.pk,
        "slot_minutes": 30,
    }

    response = api_as(staff_user).post(url(doctor, "exceptions/"), body)

    assert response.status_code == 201, response.content
    assert response.json()["department_name"] == "General medicine"
    assert Slot.objects.filter(doctor=doctor, date=tomorrow(), is_active=True).count() == 2


def test_it_lists_shows_and_removes_exceptions(api_as, staff_user, doctor):
    client = api_as(staff_user)
    exc_id = client.post(url(doctor, "exceptions/"), leave_body()).json()["id"]

    assert [row["id"] for row in client.get(url(doctor, "exceptions/")).json()["results"]] == [exc_id]
    assert client.get(url(doctor, f"exceptions/{exc_id}/")).json()["reason"] == "Conference"
    assert client.patch(url(doctor, f"exceptions/{exc_id}/"), {"reason": "x"}).status_code == 405

    assert client.delete(url(doctor, f"exceptions/{exc_id}/")).status_code == 204
    assert not AvailabilityException.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (leave_body(kind="holiday"), "kind"),
        (leave_body(date=str(timezone.localdate() - dt.timedelta(days=10))), "date"),
        (leave_body(date="tomorrow"), "date"),
        (leave_body(start_time="10:00"), "end_time"),
        (leave_body(start_time="10:00", end_time="09:00"), "end_time"),
        (
            {"kind": "extra", "date": str(tomorrow()), "start_time": "18:00", "end_time": "19:00"},
            "department",
        ),
        (leave_body(note="x"), "note"),
    ],
)
def test_it_refuses_bad_exceptions(api_as, doctor, body, field):
    response = api_as(doctor.user).post(url(doctor, "exceptions/"), body)

    assert_error(response, 400, field=field)
    assert not AvailabilityException.objects.exists()


def test_it_refuses_exceptions_by_colleagues_and_other_tenants(api_as, colleague, other_org_doctor, doctor):
    assert api_as(colleague.user).post(url(doctor, "exceptions/"), leave_body()).status_code == 403
    assert api_as(other_org_doctor.user).post(url(doctor, "exceptions/"), leave_body()).status_code == 404
    assert not AvailabilityException.objects.exists()


def test_it_lets_a_superuser_change_any_schedule(api_as, doctor):
    root = UserFactory(username="root", is_superuser=True, organization=None)

    response = api_as(root).post(url(doctor, "exceptions/"), leave_body())

    assert response.status_code == 201
    assert Doctor.objects.get(pk=doctor.pk).availability_exceptions.count() == 1


def test_it_refuses_an_extra_session_without_times(api_as, doctor, department):
    body = {"kind": "extra", "date": str(tomorrow()), "department": department.pk}

    response = api_as(doctor.user).post(url(doctor, "exceptions/"), body)

    assert_error(response, 400, field="start_time")
    assert not AvailabilityException.objects.exists()
