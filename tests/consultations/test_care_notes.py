"""/api/v1/care-notes/: written by staff and doctors at their clinics, read there, never by patients."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from consultations.models import CareNote
from consultations.services import care_note_create
from opd.core.models import AuditEvent
from tests.conftest import assert_error
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

NOTES = "/api/v1/care-notes/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_nurse_writes_a_care_note(api_as, staff_user, patient, clinic):
    response = api_as(staff_user).post(
        NOTES,
        {
            "patient": patient.pk,
            "clinic": clinic.pk,
            "category": "observation",
            "text": "  Settled, eating well. ",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["text"] == "Settled, eating well."
    assert body["category"] == "observation"
    assert body["author"] == staff_user.get_full_name()
    assert body["clinic"]["id"] == clinic.pk
    assert body["date"] == timezone.localdate(timezone=clinic.tz).isoformat()
    assert AuditEvent.objects.filter(action="care_note.created").count() == 1


def test_a_doctor_writes_one_too(api_as, doctor, patient, clinic):
    response = api_as(doctor.user).post(
        NOTES,
        {
            "patient": patient.pk,
            "clinic": clinic.pk,
            "category": "medication",
            "text": "Given 1 g paracetamol.",
        },
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"category": "gossip", "text": "x"}, {"category"}),
        ({"category": "incident", "text": ""}, {"text"}),
        ({"category": "incident", "text": "x", "author": 1}, {"author"}),
        ({"text": "x"}, {"category"}),
    ],
)
def test_it_refuses_bad_input_naming_the_field(api_as, staff_user, patient, clinic, body, fields):
    response = api_as(staff_user).post(NOTES, {"patient": patient.pk, "clinic": clinic.pk, **body})
    assert_error(response, 400, "invalid", fields)
    assert not CareNote.objects.exists()


def test_it_refuses_whitespace_only_text(api_as, staff_user, patient, clinic):
    response = api_as(staff_user).post(
        NOTES, {"patient": patient.pk, "clinic": clinic.pk, "category": "hygiene", "text": "   "}
    )
    assert_error(response, 400, "invalid", {"text"})


def test_patients_and_admins_do_not_write_care_notes(api_as, patient, admin_user, clinic):
    body = {"patient": patient.pk, "clinic": clinic.pk, "category": "observation", "text": "x"}
    assert_error(api_as(patient.user).post(NOTES, body), 403, "permission_denied")
    assert_error(api_as(patient.user).get(NOTES), 403, "permission_denied")
    assert_error(api_as(admin_user).post(NOTES, body), 403, "permission_denied")
    assert not CareNote.objects.exists()


def test_staff_write_only_at_their_clinics_and_for_their_organizations_patients(
    api_as, staff_user, patient, other_clinic, clinic, other_org_patient, other_org_clinic
):
    client = api_as(staff_user)
    body = {"patient": patient.pk, "category": "observation", "text": "x"}
    assert_error(client.post(NOTES, {**body, "clinic": other_clinic.pk}), 404, "not_found", {"clinic"})
    assert_error(client.post(NOTES, {**body, "clinic": other_org_clinic.pk}), 404, "not_found", {"clinic"})
    assert_error(
        client.post(NOTES, {**body, "clinic": clinic.pk, "patient": other_org_patient.pk}),
        404,
        "not_found",
        {"patient"},
    )
    assert not CareNote.objects.exists()


def test_care_notes_are_read_at_their_clinic(
    api_as,
    staff_user,
    other_clinic_staff,
    admin_user,
    doctor,
    other_clinic_doctor,
    other_org_doctor,
    patient,
    clinic,
):
    note = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="nutrition", text="Ate half."
    )
    url = f"{NOTES}{note.pk}/"

    for reader in (staff_user, admin_user, doctor.user):
        assert ids(api_as(reader).get(NOTES)) == [note.pk]
        assert api_as(reader).get(url).status_code == 200
    for outsider in (other_clinic_staff, other_clinic_doctor.user, other_org_doctor.user):
        assert ids(api_as(outsider).get(NOTES)) == []
        assert_error(api_as(outsider).get(url), 404, "not_found")


def test_only_the_author_corrects_a_care_note_and_nobody_deletes_it(
    api_as, staff_user, doctor, patient, clinic
):
    note = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="incident", text="Fell."
    )
    url = f"{NOTES}{note.pk}/"

    response = api_as(staff_user).patch(url, {"text": "Slipped; no injury."})
    assert response.status_code == 200, response.content
    assert response.json()["text"] == "Slipped; no injury."
    change = AuditEvent.objects.get(action="care_note.updated")
    # The change, not the text: the trail is not encrypted, the note is.
    assert change.data["fields"] == ["text"]
    assert change.data["changes"]["text"]["redacted"] is True
    assert (
        change.data["changes"]["text"]["before"]["length"],
        change.data["changes"]["text"]["after"]["length"],
    ) == (
        len("Fell."),
        len("Slipped; no injury."),
    )
    assert "Fell." not in json.dumps(change.data)

    assert_error(api_as(doctor.user).patch(url, {"text": "Mine"}), 403, "permission_denied")
    assert api_as(staff_user).delete(url).status_code == 405
    assert api_as(staff_user).put(url, {"text": "x", "category": "incident"}).status_code == 405
    assert CareNote.objects.get().text == "Slipped; no injury."


def test_it_filters_and_paginates(api_as, staff_user, doctor, patient, clinic, org):
    other = PatientFactory(organization=org)
    first = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="hygiene", text="Washed."
    )
    second = care_note_create(
        actor=staff_user, patient=other, clinic=clinic, category="incident", text="Fell."
    )
    third = care_note_create(
        actor=doctor.user, patient=patient, clinic=clinic, category="incident", text="Dizzy."
    )
    # An older note, written two days ago in the clinic's time.
    two_days_ago = timezone.now() - dt.timedelta(days=2)
    CareNote.objects.filter(pk=first.pk).update(
        created_at=two_days_ago, date=timezone.localtime(two_days_ago, clinic.tz).date()
    )
    client = api_as(staff_user)
    today = timezone.localdate(timezone=clinic.tz)

    assert ids(client.get(NOTES)) == [third.pk, second.pk, first.pk]  # newest first
    assert ids(client.get(f"{NOTES}?patient={patient.pk}")) == [third.pk, first.pk]
    assert ids(client.get(f"{NOTES}?category=incident")) == [third.pk, second.pk]
    assert ids(client.get(f"{NOTES}?clinic={clinic.pk}&category=hygiene")) == [first.pk]
    assert ids(client.get(f"{NOTES}?date_from={today.isoformat()}")) == [third.pk, second.pk]
    assert ids(client.get(f"{NOTES}?date_to={(today - dt.timedelta(days=1)).isoformat()}")) == [first.pk]
    page = client.get(f"{NOTES}?page_size=2").json()
    assert (page["count"], len(page["results"]), bool(page["next"])) == (3, 2, True)
    assert_error(client.get(f"{NOTES}?date_from=yesterday"), 400, "invalid", {"date_from"})
    assert_error(client.get(f"{NOTES}?category=gossip"), 400, "invalid", {"category"})
    assert_error(client.get(f"{NOTES}?patient=1.5"), 400, "invalid", {"patient"})
