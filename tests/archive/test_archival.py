"""Archival: old rows move (with everything that refers to them), come back intact, and nothing is lost."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from archive.models import ArchivedRecord
from archive.services import archival_restore, archival_run
from consultations.models import CareNote, Consultation, Prescription, PrescriptionItem
from consultations.services import care_note_create, consultation_open, prescription_create
from notifications.models import Kind, Notification
from notifications.services import notification_resend
from scheduling.models import Appointment
from scheduling.services import appointment_cancel, appointment_check_in
from tests.conftest import future_slot
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

MODELS = [Appointment, Notification, Consultation, Prescription, PrescriptionItem, CareNote]
SIX_YEARS = dt.timedelta(days=6 * 365)


def snapshot() -> dict[str, list[dict]]:
    """Every column of every row, to the microsecond."""
    return {m._meta.label_lower: list(m._base_manager.order_by("pk").values()) for m in MODELS}


def counts() -> dict[str, int]:
    return {m._meta.label_lower: m._base_manager.count() for m in MODELS}


def age(appointment: Appointment) -> None:
    Appointment.objects.filter(pk=appointment.pk).update(
        start=appointment.start - SIX_YEARS, end=appointment.end - SIX_YEARS
    )


@pytest.fixture
def history(org, clinic, department, doctor, staff_user, book, committed):
    """Three appointments ended six years ago (one with a consultation and a prescription, one cancelled,
    one with a resent message), two recent ones, and an old and a new care note."""
    patients = [PatientFactory(organization=org) for _ in range(5)]
    slots = [future_slot(doctor, department, days=3 + n) for n in range(5)]
    seen, cancelled, resent, *recent = (book(p, s) for p, s in zip(patients, slots, strict=True))

    appointment_check_in(actor=staff_user, appointment=seen, now=seen.start)
    consultation = consultation_open(actor=doctor.user, appointment=seen)
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[
            {
                "medication": "Amoxicillin",
                "dose": "1 capsule",
                "frequency": "three times a day",
                "quantity": 21,
            },
            {"medication": "Paracetamol", "dose": "2 tablets", "frequency": "as needed", "quantity": 16},
        ],
    )
    with committed():
        appointment_cancel(actor=staff_user, appointment=cancelled, reason="Feeling better")
    with committed():
        notification_resend(
            actor=staff_user,
            notification=Notification.objects.get(
                appointment=resent, kind=Kind.BOOKING_CONFIRMATION, channel="sms"
            ),
        )
    old_note = care_note_create(
        actor=staff_user,
        patient=patients[0],
        clinic=clinic,
        category="observation",
        text="Walked in unaided.",
    )
    care_note_create(
        actor=staff_user, patient=patients[1], clinic=clinic, category="other", text="Called back."
    )
    for appointment in (seen, cancelled, resent):
        age(appointment)
    CareNote.objects.filter(pk=old_note.pk).update(created_at=old_note.created_at - SIX_YEARS)
    return {"old": [seen, cancelled, resent], "recent": recent, "old_note": old_note}


def test_it_moves_old_appointments_with_everything_that_refers_to_them(history):
    before = counts()
    old_ids = [a.pk for a in history["old"]]
    old_rows = {
        "scheduling.appointment": 3,
        "notifications.notification": Notification.objects.filter(appointment_id__in=old_ids).count(),
        "consultations.consultation": 1,
        "consultations.prescription": 1,
        "consultations.prescriptionitem": 2,
        "consultations.carenote": 1,
    }

    report = archival_run()

    assert report.groups == 4  # three appointments and a care note
    assert dict(report.rows) == old_rows
    after = counts()
    for label, moved in old_rows.items():
        assert after[label] == before[label] - moved, label
        assert ArchivedRecord.objects.filter(model=label).count() == moved, label
    assert not Appointment.objects.filter(pk__in=old_ids).exists()
    assert set(Appointment.objects.values_list("pk", flat=True)) == {a.pk for a in history["recent"]}
    assert not Notification.objects.filter(appointment_id__in=old_ids).exists()
    assert CareNote.objects.count() == 1


def test_it_keeps_a_moved_group_together_parents_first(history):
    archival_run()

    seen = history["old"][0]
    group = list(
        ArchivedRecord.objects.filter(root_model="scheduling.appointment", root_pk=str(seen.pk)).order_by(
            "position", "id"
        )
    )
    assert group[0].model == "scheduling.appointment"
    assert group[0].position == 0
    positions = {r.model: r.position for r in group}
    assert positions["consultations.consultation"] < positions["consultations.prescription"]
    assert positions["consultations.prescription"] < positions["consultations.prescriptionitem"]
    assert {r.organization_id for r in group} == {seen.organization_id}
    resent = history["old"][2]
    chain = ArchivedRecord.objects.filter(root_pk=str(resent.pk), model="notifications.notification")
    copy = Notification._meta.pk.to_python(
        next(r.object_pk for r in chain if r.data["fields"]["resend_of"] is not None)
    )
    original = next(r for r in chain if r.data["fields"]["dedup_key"].endswith(":booking_confirmation:sms"))
    assert chain.get(object_pk=str(copy)).position > original.position


def test_running_it_twice_changes_nothing_the_second_time(history):
    archival_run()
    live, archived = snapshot(), list(ArchivedRecord.objects.order_by("pk").values())

    report = archival_run()

    assert report.groups == 0
    assert report.total == 0
    assert snapshot() == live
    assert list(ArchivedRecord.objects.order_by("pk").values()) == archived


def test_it_restores_every_row_exactly_as_it_was(history):
    before = snapshot()
    archival_run()

    report = archival_restore()

    assert report.groups == 4
    assert snapshot() == before
    assert ArchivedRecord.objects.count() == 0


def test_it_moves_in_batches_of_one_transaction_each(history):
    report = archival_run(batch_size=1)

    assert report.groups == 4
    assert Appointment.objects.count() == 2


def test_the_commands_archive_and_restore_one_group(history):
    before = snapshot()
    out = io.StringIO()
    call_command("archive_now", "--dry-run", stdout=out)
    assert "scheduling.appointment: 3 would be archived" in out.getvalue()
    assert "consultations.carenote: 1 would be archived" in out.getvalue()

    call_command("archive_now", stdout=out)
    seen = history["old"][0]
    call_command("restore_archive", "--model", "scheduling.appointment", "--id", str(seen.pk), stdout=out)

    assert "Archived 4 groups" in out.getvalue()
    assert "Restored 1 groups, " in out.getvalue()
    assert Appointment.objects.filter(pk=seen.pk).exists()
    assert Consultation.objects.filter(appointment=seen).exists()
    assert PrescriptionItem.objects.count() == 2
    assert not ArchivedRecord.objects.filter(
        root_pk=str(seen.pk), root_model="scheduling.appointment"
    ).exists()
    call_command("restore_archive", "--all", stdout=out)
    assert snapshot() == before


def test_restore_refuses_without_saying_what(history):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Choose what to restore"):
        call_command("restore_archive", stdout=io.StringIO())


def test_it_leaves_recent_rows_alone(org, department, doctor, book):
    book(PatientFactory(organization=org), future_slot(doctor, department))
    before = snapshot()

    report = archival_run(now=timezone.now())

    assert report.total == 0
    assert snapshot() == before
