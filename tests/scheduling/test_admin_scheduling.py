"""Doctors, availability, slots and appointments in the admin: scoped by clinic, written by services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opd.core.models import AuditEvent
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    ApprovalStatus,
    AvailabilityException,
    AvailabilityRule,
    BookingChannel,
    Slot,
)
from scheduling.services import appointment_book, appointment_cancel, availability_rule_create
from tests.factories import DepartmentFactory, DoctorFactory, PatientFactory, SlotFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
APPOINTMENTS = reverse("admin:scheduling_appointment_changelist")
BOOK = reverse("admin:scheduling_appointment_add")
SLOTS = reverse("admin:scheduling_slot_changelist")


def url(obj, view: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def listed(response) -> set:
    return {obj.pk for obj in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def north_department(other_clinic):
    return DepartmentFactory(clinic=other_clinic, name="Cardiology", code="card")


@pytest.fixture
def north_slot(north_department):
    return SlotFactory(department=north_department, capacity=2)


@pytest.fixture
def booked(staff_user, patient, slot):
    return appointment_book(actor=staff_user, patient=patient, slot=slot)


@pytest.fixture
def north_booked(admin_user, other_patient, north_slot):
    return appointment_book(actor=admin_user, patient=other_patient, slot=north_slot)


def rule_inline(prefix: str = "availability_rules", initial: int = 0, rows: list[dict] | None = None) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows or [])),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows or []):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def doctor_inlines(rules: dict | None = None, exceptions: dict | None = None) -> dict:
    return {
        **(rules or rule_inline()),
        **(exceptions or rule_inline("availability_exceptions")),
        "_save": "Save",
    }


SCHEDULING_MODELS = ["doctor", "availabilityrule", "availabilityexception", "slot", "appointment"]


@pytest.mark.parametrize("persona", ["admin_user", "staff_user"])
@pytest.mark.parametrize("model", SCHEDULING_MODELS)
def test_it_opens_every_scheduling_list(request, client, persona, model, booked, department, doctor):
    availability_rule_create(
        actor=None,
        doctor=doctor,
        department=department,
        weekday=0,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    AvailabilityException.objects.create(doctor=doctor, kind="leave", date=timezone.localdate())
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse(f"admin:scheduling_{model}_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


def test_it_shows_staff_only_their_clinics_appointments_and_slots(
    client, staff_user, booked, north_booked, slot, north_slot
):
    client.force_login(staff_user)
    assert listed(client.get(APPOINTMENTS)) == {booked.pk}
    assert listed(client.get(SLOTS)) == {slot.pk}
    assert client.get(url(north_booked)).status_code == 404
    assert client.get(url(north_slot)).status_code == 404


def test_it_shows_an_administrator_every_clinic_of_the_organization_but_no_other(
    client, admin_user, booked, north_booked, other_org_doctor, other_org_department
):
    theirs = SlotFactory(doctor=other_org_doctor, department=other_org_department)
    client.force_login(admin_user)
    assert listed(client.get(APPOINTMENTS)) == {booked.pk, north_booked.pk}
    assert theirs.pk not in listed(client.get(SLOTS))
    assert client.get(url(theirs)).status_code == 404
    assert client.get(url(other_org_doctor)).status_code == 404


def test_it_shows_start_times_in_the_clinics_zone_with_the_zone_named(
    client, admin_user, department, north_department
):
    winter = dt.datetime(2030, 11, 25, 9, 0, tzinfo=UTC)
    SlotFactory(department=department, start=winter, end=winter + dt.timedelta(minutes=15))
    SlotFactory(department=north_department, start=winter, end=winter + dt.timedelta(minutes=15))
    client.force_login(admin_user)
    body = client.get(SLOTS).content.decode()
    assert "Mon 25 Nov 2030, 09:00 Europe/London (GMT)" in body
    assert "Mon 25 Nov 2030, 10:00 Europe/Paris (CET)" in body


def test_it_filters_slots_with_free_seats(client, staff_user, patient, doctor, department):
    free = SlotFactory(doctor=doctor, department=department, capacity=1)
    full = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=patient, slot=full)
    client.force_login(staff_user)
    assert listed(client.get(SLOTS, {"free_seats": "yes"})) == {free.pk}
    assert listed(client.get(SLOTS, {"free_seats": "no"})) == {full.pk}


def test_it_lists_upcoming_slots_unless_asked_for_the_past(client, staff_user, doctor, department, slot):
    past = SlotFactory(doctor=doctor, department=department, start=timezone.now() - dt.timedelta(days=2))
    client.force_login(staff_user)
    assert listed(client.get(SLOTS)) == {slot.pk}
    assert listed(client.get(SLOTS, {"when": "past"})) == {past.pk}
    assert listed(client.get(SLOTS, {"when": "all"})) == {slot.pk, past.pk}
    hierarchy = {"date__year": past.date.year, "date__month": past.date.month, "date__day": past.date.day}
    assert listed(client.get(SLOTS, hierarchy)) == {past.pk}


def test_it_keeps_slots_read_only(client, admin_user, slot):
    client.force_login(admin_user)
    assert client.get(url(slot)).status_code == 200
    assert client.post(url(slot), {"capacity": "9"}).status_code == 403
    assert client.get(reverse("admin:scheduling_slot_add")).status_code == 403
    assert client.get(url(slot, "delete")).status_code == 403


# Booking ------------------------------------------------------------------------------------------------


def test_it_books_through_the_admin_for_the_signed_in_staff_member(client, staff_user, patient, slot):
    client.force_login(staff_user)
    response = client.post(BOOK, {"patient": patient.pk, "slot": slot.pk, "reason": "Cough", "_save": "Save"})
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert (appointment.patient_id, appointment.slot_id, appointment.reason) == (patient.pk, slot.pk, "Cough")
    assert (appointment.channel, appointment.booked_by_id) == (BookingChannel.ADMIN, staff_user.pk)
    slot.refresh_from_db()
    assert slot.booked_count == 1
    assert AuditEvent.objects.filter(action="appointment.booked", actor=staff_user).exists()


def test_it_shows_why_a_full_slot_cannot_be_booked_and_books_nothing(
    client, staff_user, patient, other_patient, doctor, department
):
    full = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=other_patient, slot=full)
    client.force_login(staff_user)
    response = client.post(BOOK, {"patient": patient.pk, "slot": full.pk, "reason": "", "_save": "Save"})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["slot"] == ["The slot is full."]
    assert "This slot is fully booked." in form.non_field_errors()
    assert "This slot is fully booked." in response.content.decode()
    assert Appointment.objects.count() == 1
    full.refresh_from_db()
    assert full.booked_count == 1


def test_it_shows_an_inactive_patients_refusal_beside_the_patient(client, staff_user, org, slot):
    from patients.models import PatientStatus

    inactive = PatientFactory(organization=org, status=PatientStatus.INACTIVE)
    client.force_login(staff_user)
    response = client.post(BOOK, {"patient": inactive.pk, "slot": slot.pk, "_save": "Save"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["patient"] == ["This patient is inactive."]
    assert not Appointment.objects.exists()


def test_it_does_not_let_staff_book_another_clinics_slot(client, staff_user, patient, north_slot):
    client.force_login(staff_user)
    response = client.post(BOOK, {"patient": patient.pk, "slot": north_slot.pk, "_save": "Save"})
    assert response.status_code == 200
    assert "slot" in response.context["adminform"].form.errors
    assert not Appointment.objects.exists()


def test_it_offers_only_open_slots_of_the_staff_members_clinics_to_book(
    client, staff_user, patient, doctor, department, slot, north_slot
):
    full = SlotFactory(doctor=doctor, department=department, capacity=1)
    appointment_book(actor=staff_user, patient=patient, slot=full)
    client.force_login(staff_user)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "scheduling", "model_name": "appointment", "field_name": "slot", "term": ""},
    )
    assert [int(r["id"]) for r in response.json()["results"]] == [slot.pk]


def test_it_keeps_a_booked_appointment_read_only(client, staff_user, booked, other_patient):
    client.force_login(staff_user)
    page = client.get(url(booked))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    assert 'name="seat"' not in page.content.decode()
    response = client.post(url(booked), {"status": "completed", "seat": "2", "patient": other_patient.pk})
    assert response.status_code == 403
    booked.refresh_from_db()
    assert (booked.status, booked.seat, booked.patient_id) == (AppointmentStatus.BOOKED, 1, booked.patient_id)
    assert client.get(url(booked, "delete")).status_code == 403


# Bulk cancel --------------------------------------------------------------------------------------------


def test_it_asks_before_cancelling_then_frees_the_seats_and_reports(
    client, staff_user, patient, other_patient, slot
):
    first = appointment_book(actor=staff_user, patient=patient, slot=slot)
    second = appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    client.force_login(staff_user)
    selection = {"action": "cancel_appointments", "_selected_action": [first.pk, second.pk]}

    confirm = client.post(APPOINTMENTS, selection)
    assert confirm.status_code == 200
    assert "Lovelace" in confirm.content.decode()
    assert "Hopper" in confirm.content.decode()
    assert Appointment.objects.filter(status=AppointmentStatus.BOOKED).count() == 2

    response = client.post(
        APPOINTMENTS, {**selection, "post": "yes", "cancellation_reason": "Doctor ill"}, follow=True
    )
    assert "Cancelled 2 appointments." in messages_of(response)
    slot.refresh_from_db()
    assert slot.booked_count == 0
    for appointment in (first, second):
        appointment.refresh_from_db()
        assert appointment.status == AppointmentStatus.CANCELLED
        assert (appointment.cancellation_reason, appointment.cancelled_by_id) == ("Doctor ill", staff_user.pk)


def test_it_reports_which_appointments_could_not_be_cancelled_and_why(
    client, staff_user, patient, other_patient, slot
):
    live = appointment_book(actor=staff_user, patient=patient, slot=slot)
    gone = appointment_book(actor=staff_user, patient=other_patient, slot=slot)
    appointment_cancel(actor=staff_user, appointment=gone)
    client.force_login(staff_user)
    response = client.post(
        APPOINTMENTS,
        {"action": "cancel_appointments", "_selected_action": [live.pk, gone.pk], "post": "yes"},
        follow=True,
    )
    reported = messages_of(response)
    assert "Cancelled 1 appointment." in reported
    [failure] = [m for m in reported if m.startswith("Could not cancel 1 appointment")]
    assert "Hopper" in failure
    assert "cannot be cancelled" in failure
    slot.refresh_from_db()
    assert slot.booked_count == 0


def test_it_cancels_nothing_of_another_clinic_slipped_into_the_selection(
    client, staff_user, booked, north_booked, north_slot
):
    client.force_login(staff_user)
    client.post(
        APPOINTMENTS,
        {"action": "cancel_appointments", "_selected_action": [booked.pk, north_booked.pk], "post": "yes"},
    )
    north_booked.refresh_from_db()
    north_slot.refresh_from_db()
    assert north_booked.status == AppointmentStatus.BOOKED
    assert north_slot.booked_count == 1


# Doctors and availability -------------------------------------------------------------------------------


def test_it_approves_and_suspends_doctors_through_the_service(client, admin_user, org, department):
    pending = DoctorFactory(
        user__organization=org, departments=[department], approval_status=ApprovalStatus.PENDING
    )
    availability_rule_create(
        actor=None,
        doctor=pending,
        department=department,
        weekday=(timezone.localdate() + dt.timedelta(days=1)).weekday(),
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    changelist = reverse("admin:scheduling_doctor_changelist")
    client.force_login(admin_user)
    response = client.post(
        changelist, {"action": "approve_doctors", "_selected_action": [pending.pk]}, follow=True
    )
    assert "Approved 1 doctor." in messages_of(response)
    pending.refresh_from_db()
    assert pending.approval_status == ApprovalStatus.APPROVED
    assert pending.approved_at is not None
    assert Slot.objects.filter(doctor=pending, is_active=True).exists()
    assert AuditEvent.objects.filter(action="doctor.approved", actor=admin_user).exists()

    response = client.post(
        changelist, {"action": "suspend_doctors", "_selected_action": [pending.pk]}, follow=True
    )
    assert "Suspended 1 doctor." in messages_of(response)
    pending.refresh_from_db()
    assert pending.approval_status == ApprovalStatus.SUSPENDED
    assert not Slot.objects.filter(doctor=pending, is_active=True).exists()


def test_it_leaves_approval_to_administrators(client, staff_user, org, department):
    pending = DoctorFactory(
        user__organization=org, departments=[department], approval_status=ApprovalStatus.PENDING
    )
    client.force_login(staff_user)
    changelist = reverse("admin:scheduling_doctor_changelist")
    client.post(changelist, {"action": "approve_doctors", "_selected_action": [pending.pk]})
    pending.refresh_from_db()
    assert pending.approval_status == ApprovalStatus.PENDING


def test_it_plans_slots_when_staff_add_a_weekly_session_on_the_doctor_page(
    client, staff_user, doctor, department
):
    weekday = (timezone.localdate() + dt.timedelta(days=2)).weekday()
    client.force_login(staff_user)
    response = client.post(
        url(doctor),
        doctor_inlines(
            rules=rule_inline(
                rows=[
                    {
                        "department": department.pk,
                        "weekday": weekday,
                        "start_time": "09:00",
                        "end_time": "10:00",
                        "slot_minutes": "15",
                        "capacity": "2",
                        "valid_from": timezone.localdate().isoformat(),
                        "valid_to": "",
                    }
                ]
            )
        ),
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    rule = AvailabilityRule.objects.get(doctor=doctor)
    assert (rule.start_time, rule.end_time, rule.capacity) == (dt.time(9), dt.time(10), 2)
    slots = Slot.objects.filter(doctor=doctor, department=department, is_active=True)
    assert slots.count() >= 4  # four 15-minute slots a week, over the planning horizon
    assert {s.capacity for s in slots} == {2}
    assert AuditEvent.objects.filter(action="availability.rule_added", actor=staff_user).exists()


def test_it_shows_an_overlapping_session_beside_the_row_and_saves_nothing(
    client, staff_user, doctor, department
):
    existing = availability_rule_create(
        actor=None,
        doctor=doctor,
        department=department,
        weekday=1,
        start_time=dt.time(9),
        end_time=dt.time(12),
    )
    slots_before = Slot.objects.count()
    client.force_login(staff_user)
    unchanged = {
        "id": existing.pk,
        "doctor": doctor.pk,
        "department": department.pk,
        "weekday": "1",
        "start_time": "09:00:00",
        "end_time": "12:00:00",
        "slot_minutes": "15",
        "capacity": "1",
        "valid_from": existing.valid_from.isoformat(),
        "valid_to": "",
    }
    clash = {**unchanged, "id": "", "start_time": "10:00", "end_time": "11:00"}
    response = client.post(url(doctor), doctor_inlines(rules=rule_inline(initial=1, rows=[unchanged, clash])))
    assert response.status_code == 200
    body = response.content.decode()
    assert "This overlaps the doctor&#x27;s existing session" in body
    [rules_formset] = [
        f for f in response.context["inline_admin_formsets"] if f.formset.model is AvailabilityRule
    ]
    assert rules_formset.formset.forms[1].errors["start_time"] == ["Overlaps another session."]
    assert list(AvailabilityRule.objects.values_list("pk", flat=True)) == [existing.pk]
    assert Slot.objects.count() == slots_before


def test_it_refuses_a_rule_in_a_department_the_doctor_does_not_work_in(client, admin_user, doctor, clinic):
    elsewhere = DepartmentFactory(clinic=clinic, name="Dermatology", code="derm")
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:scheduling_availabilityrule_add"),
        {
            "doctor": doctor.pk,
            "department": elsewhere.pk,
            "weekday": "2",
            "start_time": "09:00",
            "end_time": "10:00",
            "slot_minutes": "15",
            "capacity": "1",
            "valid_from": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["department"] == ["The doctor is not a member of this department."]
    assert not AvailabilityRule.objects.exists()


def test_it_closes_free_slots_when_a_rule_is_deleted(client, staff_user, doctor, department):
    weekday = (timezone.localdate() + dt.timedelta(days=2)).weekday()
    rule = availability_rule_create(
        actor=None,
        doctor=doctor,
        department=department,
        weekday=weekday,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    assert Slot.objects.filter(doctor=doctor, is_active=True).exists()
    client.force_login(staff_user)
    response = client.post(url(rule, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not AvailabilityRule.objects.exists()
    assert not Slot.objects.filter(doctor=doctor, is_active=True).exists()
    assert AuditEvent.objects.filter(action="availability.rule_removed", actor=staff_user).exists()


def test_it_adds_a_days_leave_through_the_service(client, staff_user, doctor, department):
    day = timezone.localdate() + dt.timedelta(days=3)
    availability_rule_create(
        actor=None,
        doctor=doctor,
        department=department,
        weekday=day.weekday(),
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    assert Slot.objects.filter(doctor=doctor, date=day, is_active=True).exists()
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:scheduling_availabilityexception_add"),
        {
            "doctor": doctor.pk,
            "kind": "leave",
            "date": day.isoformat(),
            "slot_minutes": "15",
            "capacity": "1",
        },
    )
    assert response.status_code == 302
    assert AvailabilityException.objects.filter(doctor=doctor, date=day).exists()
    assert not Slot.objects.filter(doctor=doctor, date=day, is_active=True).exists()


def test_it_keeps_a_doctors_profile_read_only_for_staff(client, staff_user, doctor):
    client.force_login(staff_user)
    response = client.post(
        url(doctor), {**doctor_inlines(), "specialization": "Forged", "license_number": "X-1"}
    )
    assert response.status_code == 302
    doctor.refresh_from_db()
    assert doctor.specialization == "General practice"


def test_it_hides_doctors_of_other_clinics_from_staff(client, staff_user, doctor, north_slot):
    client.force_login(staff_user)
    response = client.get(reverse("admin:scheduling_doctor_changelist"))
    assert listed(response) == {doctor.pk}
    assert client.get(url(north_slot.doctor)).status_code == 404


def test_it_adds_a_doctor_profile_in_the_administrators_organization(
    client, admin_user, org, department, other_org
):
    from opd.core.models import Role
    from scheduling.models import Doctor
    from tests.factories import UserFactory

    account = UserFactory(organization=org, role=Role.DOCTOR, last_name="Grey")
    stranger = UserFactory(organization=other_org, role=Role.DOCTOR)
    add = reverse("admin:scheduling_doctor_add")
    profile = {
        "organization": other_org.pk,  # ignored: fixed to the administrator's organization
        "specialization": "Surgery",
        "license_number": "GMC-1",
        "departments": [department.pk],
        **doctor_inlines(),
    }
    client.force_login(admin_user)
    assert client.get(add).status_code == 200

    refused = client.post(add, {**profile, "user": stranger.pk})
    assert refused.status_code == 200
    assert "user" in refused.context["adminform"].form.errors
    assert not Doctor.objects.filter(user=stranger).exists()

    assert client.post(add, {**profile, "user": account.pk}).status_code == 302
    created = Doctor.objects.get(user=account)
    assert (created.organization_id, created.approval_status) == (org.pk, ApprovalStatus.PENDING)
    assert list(created.departments.all()) == [department]


def test_it_resizes_planned_slots_when_a_sessions_capacity_changes(client, admin_user, doctor, department):
    weekday = (timezone.localdate() + dt.timedelta(days=2)).weekday()
    rule = availability_rule_create(
        actor=None,
        doctor=doctor,
        department=department,
        weekday=weekday,
        start_time=dt.time(9),
        end_time=dt.time(10),
    )
    client.force_login(admin_user)
    response = client.post(
        url(rule),
        {
            "department": department.pk,
            "weekday": weekday,
            "start_time": "09:00",
            "end_time": "10:00",
            "slot_minutes": "15",
            "capacity": "3",
            "valid_from": rule.valid_from.isoformat(),
            "valid_to": "",
        },
    )
    assert response.status_code == 302
    assert {s.capacity for s in Slot.objects.filter(doctor=doctor, is_active=True)} == {3}
    event = AuditEvent.objects.get(action="availability.rule_changed")
    assert event.data["fields"] == ["capacity"]


def test_it_opens_the_booking_page(client, staff_user):
    client.force_login(staff_user)
    response = client.get(BOOK)
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"patient", "slot", "reason"}


# Performance --------------------------------------------------------------------------------------------


def _book_many(staff_user, org, department, n: int) -> None:
    for _ in range(n):
        appointment_book(
            actor=staff_user,
            patient=PatientFactory(organization=org),
            slot=SlotFactory(department=department),
        )


@pytest.mark.parametrize("changelist", [APPOINTMENTS, SLOTS, reverse("admin:scheduling_doctor_changelist")])
def test_it_lists_in_the_same_number_of_queries_for_3_or_20_rows(
    client, staff_user, org, department, changelist, django_assert_max_num_queries
):
    _book_many(staff_user, org, department, 3)
    client.force_login(staff_user)
    client.get(changelist)  # warm up the session and caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(changelist).status_code == 200
    _book_many(staff_user, org, department, 17)
    with django_assert_max_num_queries(len(few)):
        response = client.get(changelist)
    assert len(response.context["cl"].result_list) == 20
