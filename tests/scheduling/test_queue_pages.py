"""The queue's pages without JavaScript: the dashboard, its forms, a doctor's queue for staff, the displays."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse

from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_start, queue_call_next

from .queue_helpers import booked, waiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_doctor_sees_the_days_queue(signed_in, staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10, priority="NEWS2 medium (5)")
    later = booked(staff_user, doctor, department, minutes=50)

    page = text(signed_in(doctor.user).get(reverse("queue:dashboard")))

    assert "Today's queue" in page
    assert first.patient.full_name in page
    assert f"GEN-{first.token_number}" in page
    assert "NEWS2 medium (5)" in page
    assert later.patient.full_name in page  # expected later
    assert 'data-ws-path="/ws/queue/doctor/' in page
    assert 'data-version="4"' in page  # two bookings for today, a check-in and a priority
    assert "Call next patient" in page


def test_the_doctor_calls_starts_and_completes_with_plain_forms(signed_in, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    client = signed_in(doctor.user)
    dashboard = reverse("queue:dashboard")

    response = client.post(reverse("queue:call-next", args=[doctor.pk]), {"next": dashboard}, follow=True)
    assert f"Called token GEN-{appt.token_number}" in text(response)
    assert "Start consultation" in text(response)

    action = reverse("queue:appointment-action", args=[appt.pk, "start"])
    assert "Continue the consultation" in text(client.post(action, {"next": dashboard}, follow=True))
    # The visit is completed in its consultation record, with plain forms too.
    panel = reverse("consultations:panel", args=[appt.pk])
    client.post(reverse("consultations:panel-open", args=[appt.pk]))
    record = {"vitals_not_taken_reason": "Telephone review", "assessment": "Well", "plan": "None needed"}
    response = client.post(reverse("consultations:panel-complete", args=[appt.pk]), record, follow=True)
    assert response.redirect_chain[-1][0] == panel
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.COMPLETED


def test_a_refused_action_comes_back_as_a_message(signed_in, doctor):
    response = signed_in(doctor.user).post(reverse("queue:call-next", args=[doctor.pk]), follow=True)

    assert "Nobody is waiting." in text(response)


def test_it_never_redirects_to_another_site(signed_in, staff_user, doctor, department):
    waiting(staff_user, doctor, department)

    response = signed_in(doctor.user).post(
        reverse("queue:call-next", args=[doctor.pk]), {"next": "https://evil.example/"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("queue:dashboard")


def test_reception_follows_a_doctors_queue_and_may_skip_but_not_treat(
    signed_in, staff_user, doctor, department
):
    appt = waiting(staff_user, doctor, department)
    queue_call_next(actor=doctor.user, doctor=doctor)
    client = signed_in(staff_user)

    page = text(client.get(reverse("queue:doctor", args=[doctor.pk])))
    assert appt.patient.full_name in page
    assert "Skip (behind the next)" in page
    assert "Start consultation" not in page
    assert "Call next patient" not in page

    assert client.post(reverse("queue:appointment-action", args=[appt.pk, "start"])).status_code == 403
    assert client.post(reverse("queue:call-next", args=[doctor.pk])).status_code == 403
    client.post(reverse("queue:appointment-action", args=[appt.pk, "skip"]), {"confirmed": "1"})
    assert Appointment.objects.get(pk=appt.pk).called_at is None


def test_reception_checks_in_from_a_doctors_queue(signed_in, staff_user, doctor, department):
    appt = booked(staff_user, doctor, department)

    response = signed_in(staff_user).post(
        reverse("queue:appointment-action", args=[appt.pk, "check-in"]), follow=True
    )

    assert "Checked in with token GEN-1." in text(response)
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.CHECKED_IN


def test_who_may_open_which_queue(
    signed_in, staff_user, patient, doctor, colleague, department, other_org_doctor
):
    appt = waiting(staff_user, doctor, department)

    assert signed_in(staff_user).get(reverse("queue:dashboard")).url == reverse("queue:waiting-rooms")
    assert signed_in(patient.user).get(reverse("queue:dashboard")).status_code == 403
    assert signed_in(colleague.user).get(reverse("queue:doctor", args=[doctor.pk])).status_code == 403
    assert signed_in(staff_user).get(reverse("queue:doctor", args=[other_org_doctor.pk])).status_code == 404
    assert signed_in(doctor.user).get(reverse("queue:doctor", args=[doctor.pk])).url == reverse(
        "queue:dashboard"
    )
    for action in ("skip", "start", "no-show"):
        url = reverse("queue:appointment-action", args=[appt.pk, action])
        assert signed_in(colleague.user).post(url).status_code == 403
    assert (
        signed_in(doctor.user)
        .post(reverse("queue:appointment-action", args=[appt.pk, "check-in"]))
        .status_code
        == 403
    )
    assert (
        signed_in(doctor.user).post(reverse("queue:appointment-action", args=[appt.pk, "dance"])).status_code
        == 404
    )


def test_the_pages_need_a_sign_in(client, doctor, clinic):
    for url in (
        reverse("queue:dashboard"),
        reverse("queue:doctor-board", args=[doctor.pk]),
        reverse("queue:waiting-room", args=[clinic.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_the_consultation_panel_is_embedded_when_the_consultations_app_has_one(
    signed_in, staff_user, doctor, department
):
    appt = waiting(staff_user, doctor, department)
    appointment_start(actor=doctor.user, appointment=appt)

    page = text(signed_in(doctor.user).get(reverse("queue:dashboard")))

    try:
        panel = reverse("consultations:panel", args=[appt.pk])
    except NoReverseMatch:
        assert "hx-get" not in page
    else:
        assert f'hx-get="{panel}"' in page
        assert 'hx-trigger="load"' in page


def test_the_fragments_carry_what_the_script_compares(signed_in, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    client = signed_in(doctor.user)

    board = text(client.get(reverse("queue:doctor-board", args=[doctor.pk])))
    current = text(client.get(reverse("queue:doctor-current", args=[doctor.pk])))

    assert board.lstrip().startswith('<section id="queue-board"')
    assert 'data-focus-key="none:1"' in board
    assert appt.patient.full_name in board
    assert current.lstrip().startswith('<section id="queue-current"')
    assert 'data-key="none:1"' in current


def test_the_waiting_room_shows_tokens_and_rooms_never_names(
    signed_in, staff_user, doctor, department, clinic
):
    doctor.room = "Room 3"
    doctor.save(update_fields=["room"])
    first = waiting(staff_user, doctor, department, minutes=10, priority="NEWS2 high (8)")
    second = waiting(staff_user, doctor, department, minutes=20)
    queue_call_next(actor=doctor.user, doctor=doctor)

    page = text(signed_in(staff_user).get(reverse("queue:waiting-room", args=[clinic.pk])))

    assert f"GEN-{first.token_number}" in page
    assert f"GEN-{second.token_number}" in page
    assert "Room 3" in page
    for appt in (first, second):
        assert appt.patient.last_name not in page
        assert appt.patient.mrn not in page
    assert "NEWS2" not in page
    assert 'data-ws-path="/ws/queue/clinic/' in page


def test_reception_lists_its_waiting_rooms(signed_in, staff_user, doctor, department, clinic, other_clinic):
    waiting(staff_user, doctor, department)

    page = text(signed_in(staff_user).get(reverse("queue:waiting-rooms")))

    assert clinic.name in page
    assert other_clinic.name not in page  # not a member there
    assert reverse("queue:waiting-room", args=[clinic.pk]) in page
    assert reverse("queue:doctor", args=[doctor.pk]) in page


def test_only_clinic_staff_open_waiting_rooms(signed_in, doctor, clinic, admin_user):
    assert signed_in(doctor.user).get(reverse("queue:waiting-rooms")).status_code == 403
    assert signed_in(doctor.user).get(reverse("queue:waiting-room", args=[clinic.pk])).status_code == 403
    assert signed_in(admin_user).get(reverse("queue:waiting-room", args=[clinic.pk])).status_code == 200


@pytest.mark.parametrize(("action", "question"), [("no-show", "as no-show?"), ("skip", "Skip token GEN-1")])
def test_it_asks_before_a_no_show_or_skip_without_javascript(
    signed_in, staff_user, doctor, department, action, question
):
    appt = waiting(staff_user, doctor, department)
    client = signed_in(doctor.user)
    url = reverse("queue:appointment-action", args=[appt.pk, action])

    page = text(client.post(url, {"next": reverse("queue:dashboard")}))

    assert question in page
    assert appt.patient.full_name in page
    assert 'name="confirmed" value="1"' in page
    assert "Cancel, go back" in page
    fresh = Appointment.objects.get(pk=appt.pk)
    assert (fresh.status, fresh.queue_key) == (AppointmentStatus.CHECKED_IN, appt.queue_key)


def test_it_marks_a_no_show_once_confirmed_and_offers_undo(signed_in, staff_user, doctor, department):
    appt = waiting(staff_user, doctor, department)
    client = signed_in(doctor.user)
    dashboard = reverse("queue:dashboard")

    page = text(
        client.post(
            reverse("queue:appointment-action", args=[appt.pk, "no-show"]),
            {"next": dashboard, "confirmed": "1"},
            follow=True,
        )
    )

    assert "Token GEN-1 marked as no-show. Undo it from the top of the queue within 5 minutes." in page
    undo = reverse("queue:appointment-action", args=[appt.pk, "undo-no-show"])
    assert f'action="{undo}"' in page
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW

    page = text(client.post(undo, {"next": dashboard}, follow=True))

    assert "Token GEN-1: no-show undone, back in the queue." in page
    assert f'action="{undo}"' not in page
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.CHECKED_IN


def test_the_undo_offer_goes_after_the_window_and_a_late_undo_says_why(
    signed_in, staff_user, doctor, department, settings
):
    import datetime as dt

    import time_machine
    from django.utils import timezone

    from scheduling.services import appointment_mark_no_show

    appt = appointment_mark_no_show(actor=staff_user, appointment=waiting(staff_user, doctor, department))
    client = signed_in(doctor.user)
    undo = reverse("queue:appointment-action", args=[appt.pk, "undo-no-show"])

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=settings.OPD_UNDO_MINUTES, seconds=10)):
        assert f'action="{undo}"' not in text(client.get(reverse("queue:dashboard")))
        page = text(client.post(undo, {"next": reverse("queue:dashboard")}, follow=True))

    assert "can be undone for 5 minutes only" in page
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_a_colleague_may_not_undo(signed_in, staff_user, doctor, colleague, department):
    from scheduling.services import appointment_mark_no_show

    appt = appointment_mark_no_show(actor=staff_user, appointment=waiting(staff_user, doctor, department))

    response = signed_in(colleague.user).post(
        reverse("queue:appointment-action", args=[appt.pk, "undo-no-show"])
    )

    assert response.status_code == 403
    assert Appointment.objects.get(pk=appt.pk).status == AppointmentStatus.NO_SHOW


def test_a_confirmed_skip_can_be_undone_from_the_dashboard(signed_in, staff_user, doctor, department):
    first = waiting(staff_user, doctor, department, minutes=10)
    waiting(staff_user, doctor, department, minutes=20)
    client = signed_in(doctor.user)
    dashboard = reverse("queue:dashboard")
    skip = reverse("queue:appointment-action", args=[first.pk, "skip"])

    page = text(client.post(skip, {"next": dashboard, "confirmed": "1"}, follow=True))

    assert "Token GEN-1 moved behind the next patient. Undo it from the top of the queue" in page
    undo = reverse("queue:appointment-action", args=[first.pk, "undo-skip"])
    assert f'action="{undo}"' in page
    page = text(client.post(undo, {"next": dashboard}, follow=True))
    assert "Token GEN-1: skip undone, back in their place." in page
    assert Appointment.objects.get(pk=first.pk).queue_key == first.queue_key
