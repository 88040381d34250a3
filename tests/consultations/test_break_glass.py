"""Break the glass (issue #15): a doctor without a care relationship with the patient states a reason
before the record opens; the reason is logged, flagged, reviewed by an administrator, and holds for a
short window."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from consultations.services import prescription_create
from opd.core.models import AccessGrant, AccessReview, AuditEvent
from scheduling.models import Appointment
from scheduling.services import appointment_cancel
from tests.conftest import BREAK_GLASS, assert_error

from .factories import booked_appointment, completed_consultation, open_consultation

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(doctor, department, patient):
    """A completed consultation by `doctor`; `colleague` at the same clinic has never seen the patient."""
    return completed_consultation(doctor=doctor, department=department, patient=patient)


def url(consultation) -> str:
    return f"/api/v1/consultations/{consultation.pk}/"


def flagged() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="record.break_glass").order_by("pk"))


def test_it_refuses_a_doctor_without_a_care_relationship_and_names_the_field(api_as, colleague, record):
    error = assert_error(api_as(colleague.user).get(url(record)), 403, "reason_required", field="reason")
    assert "State why you open the record" in error["message"]
    assert flagged() == []
    assert not AuditEvent.objects.filter(action="record.viewed").exists()


def test_it_refuses_a_reason_too_short_and_writes_nothing(api_as, colleague, record):
    assert_error(
        api_as(colleague.user).get(url(record), {"reason": "  because "}), 400, "invalid", field="reason"
    )
    assert flagged() == []
    assert not AccessGrant.objects.exists()


def test_a_reason_opens_the_record_logs_it_and_flags_it(api_as, colleague, record, patient):
    response = api_as(colleague.user).get(url(record), {"reason": BREAK_GLASS}, REMOTE_ADDR="198.51.100.4")

    assert response.status_code == 200
    [flag] = flagged()
    assert (flag.actor, flag.patient_id, flag.reason) == (colleague.user, patient.pk, BREAK_GLASS)
    assert flag.source_ip == "198.51.100.4"
    read = AuditEvent.objects.get(action="record.viewed")
    assert read.reason == BREAK_GLASS  # the read says what it stood on


def test_the_header_works_as_the_parameter(api_as, colleague, record):
    response = api_as(colleague.user).get(url(record), HTTP_X_ACCESS_REASON=BREAK_GLASS)
    assert response.status_code == 200
    assert len(flagged()) == 1


def test_the_reason_holds_for_a_window_then_is_asked_again(
    api_as, colleague, record, settings, department, doctor, patient
):
    settings.OPD_BREAK_GLASS_MINUTES = 30
    client = api_as(colleague.user)
    assert client.get(url(record), {"reason": BREAK_GLASS}).status_code == 200

    # Within the window: other records of the patient open without asking, and lists show them.
    assert client.get(f"/api/v1/patients/{patient.pk}/history/").status_code == 200
    assert [row["id"] for row in client.get("/api/v1/consultations/").json()["results"]] == [record.pk]
    assert len(flagged()) == 1  # one flag per reason, not per click
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=31)):
        assert_error(client.get(url(record)), 403, "reason_required")
        assert client.get("/api/v1/consultations/").json()["results"] == []


def test_an_appointment_in_the_last_twelve_months_is_a_care_relationship(
    api_as, colleague, department, patient, record, settings
):
    settings.OPD_CARE_RELATIONSHIP_MONTHS = 12
    earlier = booked_appointment(doctor=colleague, department=department, patient=patient)
    client = api_as(colleague.user)

    Appointment.objects.filter(pk=earlier.pk).update(start=timezone.now() - dt.timedelta(days=300))
    assert client.get(url(record)).status_code == 200
    Appointment.objects.filter(pk=earlier.pk).update(start=timezone.now() - dt.timedelta(days=400))
    assert_error(client.get(url(record)), 403, "reason_required")
    assert flagged() == []


def test_an_upcoming_appointment_counts_and_a_cancelled_one_does_not(
    api_as, colleague, department, patient, record
):
    upcoming = booked_appointment(
        doctor=colleague, department=department, patient=patient, minutes_from_now=60 * 24
    )
    client = api_as(colleague.user)
    assert client.get(url(record)).status_code == 200
    appointment_cancel(actor=None, appointment=upcoming, reason="Patient asked")
    assert_error(client.get(url(record)), 403, "reason_required")


def test_the_author_of_a_record_always_reads_it(api_as, doctor, record):
    Appointment.objects.filter(pk=record.appointment_id).update(start=timezone.now() - dt.timedelta(days=800))
    assert api_as(doctor.user).get(url(record)).status_code == 200


def test_the_patient_reads_their_own_record_without_a_reason(api_as, patient, record):
    assert api_as(patient.user).get(url(record)).status_code == 200
    assert flagged() == []


def test_the_printable_prescription_asks_for_the_reason_with_a_form(
    client, colleague, doctor, department, patient
):
    draft = open_consultation(doctor=doctor, department=department, patient=patient)
    prescription = prescription_create(
        actor=doctor.user,
        consultation=draft,
        items=[{"medication": "Aspirin", "dose": "1 tablet", "frequency": "daily", "quantity": 7}],
    )
    page = reverse("consultations:prescription-print", args=[prescription.pk])
    client.force_login(colleague.user)

    asked = client.get(page)
    assert asked.status_code == 403
    assert b"A reason is required" in asked.content
    assert b'name="reason"' in asked.content

    too_short = client.post(
        reverse("consultations:break-glass", args=[patient.pk]), {"reason": "x", "next": page}
    )
    assert too_short.status_code == 403
    assert b"At least" in too_short.content
    assert flagged() == []

    opened = client.post(
        reverse("consultations:break-glass", args=[patient.pk]), {"reason": BREAK_GLASS, "next": page}
    )
    assert opened.status_code == 302
    assert opened["Location"] == page
    assert client.get(page).status_code == 200
    [flag] = flagged()
    assert flag.reason == BREAK_GLASS
    assert AuditEvent.objects.get(action="record.printed").reason == BREAK_GLASS


def test_the_reason_form_does_not_redirect_off_site(client, colleague, patient):
    client.force_login(colleague.user)
    response = client.post(
        reverse("consultations:break-glass", args=[patient.pk]),
        {"reason": BREAK_GLASS, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_only_doctors_break_the_glass_and_only_for_patients_they_may_see(
    client, staff_user, colleague, other_org_patient
):
    client.force_login(staff_user)
    assert (
        client.post(
            reverse("consultations:break-glass", args=[other_org_patient.pk]), {"reason": BREAK_GLASS}
        ).status_code
        == 403
    )
    client.force_login(colleague.user)
    assert (
        client.post(
            reverse("consultations:break-glass", args=[other_org_patient.pk]), {"reason": BREAK_GLASS}
        ).status_code
        == 404
    )
    assert flagged() == []


# Review -----------------------------------------------------------------------------------------------


@pytest.fixture
def flag(api_as, colleague, record):
    api_as(colleague.user).get(url(record), {"reason": BREAK_GLASS})
    return flagged()[0]


def test_an_admin_lists_the_flagged_accesses_of_their_organization_only(
    client, admin_user, flag, other_org_user
):
    from opd.core.models import Role

    client.force_login(admin_user)
    listing = client.get(reverse("admin:core_flaggedaccess_changelist"))
    assert listing.status_code == 200
    assert [obj.pk for obj in listing.context["cl"].result_list] == [flag.pk]
    assert BREAK_GLASS.encode() in listing.content
    # Another organization's administrator sees none of it.
    other_org_user.role = Role.ADMIN
    other_org_user.is_staff = True
    other_org_user.save()
    client.force_login(other_org_user)
    assert list(client.get(reverse("admin:core_flaggedaccess_changelist")).context["cl"].result_list) == []
    assert client.get(reverse("admin:core_flaggedaccess_change", args=[flag.pk])).status_code in (302, 404)


def test_reviewing_writes_a_review_row_and_leaves_the_access_row_as_it_was(client, admin_user, flag):
    before = AuditEvent.objects.filter(pk=flag.pk).values().get()
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:core_accessreview_add"), {"event": flag.pk, "note": "Confirmed with the ward."}
    )

    assert response.status_code == 302, response.content
    review = AccessReview.objects.get()
    assert (review.event_id, review.reviewer, review.note) == (
        flag.pk,
        admin_user,
        "Confirmed with the ward.",
    )
    assert AuditEvent.objects.filter(pk=flag.pk).values().get() == before
    listing = client.get(reverse("admin:core_flaggedaccess_changelist") + "?reviewed=no")
    assert list(listing.context["cl"].result_list) == []
    # The review is shown on the clock of the clinic whose record was opened, its zone named.
    reviewed = client.get(reverse("admin:core_flaggedaccess_changelist")).content.decode()
    assert f"Reviewed by {admin_user}" in reviewed
    assert "Europe/London" in reviewed
    assert "UTC" not in reviewed


def test_the_bulk_action_marks_reviewed_once(client, admin_user, flag):
    client.force_login(admin_user)
    changelist = reverse("admin:core_flaggedaccess_changelist")
    for _ in range(2):
        client.post(changelist, {"action": "mark_reviewed", "_selected_action": [flag.pk]})
    assert AccessReview.objects.filter(event=flag).count() == 1


def test_staff_and_doctors_do_not_review(client, staff_user, flag):
    from opd.core.errors import PermissionDenied
    from opd.core.services.access import access_review_create

    client.force_login(staff_user)
    assert client.get(reverse("admin:core_flaggedaccess_changelist")).status_code == 403
    with pytest.raises(PermissionDenied):
        access_review_create(actor=staff_user, event=flag)
