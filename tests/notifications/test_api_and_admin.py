"""Staff see and resend their clinics' messages (API and admin); patients see their own; nobody else's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import ClinicNotificationSettings, ContactPreference, Kind, Notification, Status
from tests.conftest import assert_error, future_slot
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/notifications/"
ADMIN_LIST = reverse("admin:notifications_notification_changelist")


def resend_url(notification) -> str:
    return f"{LIST}{notification.pk}/resend/"


@pytest.fixture
def central_appointment(book, patient, doctor, department):
    return book(patient, future_slot(doctor, department))


@pytest.fixture
def north_appointment(book, other_patient, other_clinic_doctor, other_clinic_department):
    return book(other_patient, future_slot(other_clinic_doctor, other_clinic_department))


@pytest.fixture
def other_org_appointment(book, other_org, other_org_patient, other_org_department, other_org_doctor):
    staff = UserFactory(
        role="staff", organization=other_org, is_staff=True, clinics=[other_org_department.clinic]
    )
    return book(other_org_patient, future_slot(other_org_doctor, other_org_department), actor=staff)


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def test_staff_list_the_messages_of_their_clinics_only(
    api_as, staff_user, central_appointment, north_appointment, other_org_appointment
):
    response = api_as(staff_user).get(LIST)

    assert response.status_code == 200
    assert ids(response) == set(
        Notification.objects.filter(appointment=central_appointment).values_list("pk", flat=True)
    )


def test_admins_list_their_whole_organization(
    api_as, admin_user, central_appointment, north_appointment, other_org_appointment
):
    response = api_as(admin_user).get(LIST, {"page_size": 200})

    expected = Notification.objects.filter(appointment__in=[central_appointment, north_appointment])
    assert ids(response) == set(expected.values_list("pk", flat=True))


def test_patients_list_only_their_own(api_as, patient, central_appointment, north_appointment):
    response = api_as(patient.user).get(LIST, {"page_size": 200})

    assert ids(response) == set(
        Notification.objects.filter(appointment=central_appointment).values_list("pk", flat=True)
    )
    assert all(row["last_error"] == "" for row in response.json()["results"])


def test_it_filters_by_status_channel_and_kind(api_as, staff_user, central_appointment):
    response = api_as(staff_user).get(
        LIST, {"status": "sent", "channel": "sms", "kind": "booking_confirmation"}
    )

    (row,) = response.json()["results"]
    assert (row["status"], row["channel"], row["kind"]) == ("sent", "sms", "booking_confirmation")
    assert api_as(staff_user).get(LIST, {"status": "nonsense"}).status_code == 400


def test_staff_resend_a_sent_message(api_as, staff_user, central_appointment, committed):
    original = Notification.objects.get(
        appointment=central_appointment, kind=Kind.BOOKING_CONFIRMATION, channel="sms"
    )

    with committed():
        response = api_as(staff_user).post(resend_url(original))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["resend_of"] == original.pk
    assert body["kind"] == "booking_confirmation"
    assert Notification.objects.get(pk=body["id"]).status == Status.SENT


def test_resending_a_queued_message_is_a_conflict(api_as, staff_user, central_appointment):
    reminder = Notification.objects.filter(appointment=central_appointment, kind=Kind.REMINDER).first()

    response = api_as(staff_user).post(resend_url(reminder))

    assert_error(response, 409, "invalid_state")


def test_patients_may_not_resend(api_as, patient, central_appointment):
    original = Notification.objects.filter(appointment=central_appointment, status=Status.SENT).first()

    assert api_as(patient.user).post(resend_url(original)).status_code == 403


def test_another_clinics_message_is_not_found(api_as, staff_user, north_appointment, other_org_appointment):
    for appointment in (north_appointment, other_org_appointment):
        message = Notification.objects.filter(appointment=appointment, status=Status.SENT).first()
        assert api_as(staff_user).post(resend_url(message)).status_code == 404
        assert api_as(staff_user).get(f"{LIST}{message.pk}/").status_code == 404


def test_it_needs_a_signed_in_user(api):
    assert api.get(LIST).status_code == 401


def test_the_admin_lists_and_filters_the_staff_members_clinics(
    client, staff_user, central_appointment, north_appointment
):
    client.force_login(staff_user)

    response = client.get(ADMIN_LIST, {"status__exact": "sent", "channel__exact": "email"})

    assert response.status_code == 200
    listed = {n.pk for n in response.context["cl"].result_list}
    assert listed == set(
        Notification.objects.filter(
            appointment=central_appointment, status="sent", channel="email"
        ).values_list("pk", flat=True)
    )


def test_the_admin_finds_messages_by_appointment_id_or_address(
    client, staff_user, central_appointment, patient
):
    client.force_login(staff_user)

    by_id = client.get(ADMIN_LIST, {"q": str(central_appointment.pk)})
    by_email = client.get(ADMIN_LIST, {"q": patient.email})

    assert {n.appointment_id for n in by_id.context["cl"].result_list} == {central_appointment.pk}
    assert {n.channel for n in by_email.context["cl"].result_list} == {"email"}
    assert client.get(ADMIN_LIST, {"q": "not-a-number"}).status_code == 200


def test_the_admin_resends_selected_messages(client, staff_user, central_appointment):
    client.force_login(staff_user)
    sent = list(Notification.objects.filter(appointment=central_appointment, status=Status.SENT))
    queued = Notification.objects.filter(appointment=central_appointment, status=Status.QUEUED).first()

    response = client.post(
        ADMIN_LIST,
        {"action": "resend_notifications", "_selected_action": [n.pk for n in [*sent, queued]]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert f"Queued {len(sent)} messages to be sent again." in messages
    assert any(m.startswith("Could not resend 1:") for m in messages)
    assert Notification.objects.filter(resend_of__in=sent).count() == len(sent)


def test_the_admin_saves_contact_preferences_through_the_service(client, staff_user, org):
    patient = PatientFactory(organization=org)
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:notifications_contactpreference_add"),
        {"patient": patient.pk, "email_enabled": "on", "in_app_enabled": "on", "preferred_channel": "email"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    pref = ContactPreference.objects.get(patient=patient)
    assert (pref.email_enabled, pref.sms_enabled, pref.preferred_channel) == (True, False, "email")


def test_the_admin_shows_a_service_refusal_beside_the_form(client, staff_user, org):
    patient = PatientFactory(organization=org)
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:notifications_contactpreference_add"),
        {"patient": patient.pk, "sms_enabled": "on", "preferred_channel": "email"},
    )

    assert response.status_code == 200
    assert "Email is switched off." in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_only_administrators_change_clinic_reminder_times(client, admin_user, staff_user, clinic):
    add = reverse("admin:notifications_clinicnotificationsettings_add")
    client.force_login(staff_user)
    assert client.get(add).status_code == 403

    client.force_login(admin_user)
    response = client.post(add, {"clinic": clinic.pk, "reminder_lead_minutes": "[30, 1440]"})

    assert response.status_code == 302
    assert ClinicNotificationSettings.objects.get(clinic=clinic).reminder_lead_minutes == [1440, 30]
