"""Possible duplicates at registration, and merging duplicates already made (#17)."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.utils import timezone

from consultations.models import CareNote, Consultation
from consultations.services import care_note_create
from notifications.models import ContactPreference, Notification
from notifications.services import contact_preference_set
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AccessGrant, AuditEvent, Role
from patients import services as patient_services
from patients.duplicates import fold_name, names_similar
from patients.models import Allergy, Patient, PatientStatus
from patients.services import (
    PossibleDuplicate,
    allergy_record,
    merge_plan,
    patient_create,
    patient_duplicate_reviewed,
    patient_merge,
    patient_set_status,
)
from portal.services import patient_register
from scheduling.models import Appointment
from tests.conftest import future_slot
from tests.consultations.factories import open_consultation
from tests.factories import OrganizationFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def register(org, clinic=None, **fields):
    values = {
        "first_name": "Mary",
        "last_name": "Seacole",
        "date_of_birth": dt.date(1985, 11, 23),
        "phone": "07700 900123",
        **fields,
    }
    return patient_create(actor=None, organization=org, registered_at_clinic=clinic, **values)


# Who looks alike


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("mary", "SEACOLE"),  # case
        ("Mary ", " Seacole"),  # spacing
        ("Máry", "Seacóle"),  # accents
        ("Seacole", "Mary"),  # swapped
        ("Marie", "Seacole"),  # one letter
        ("Mary", "Seacole-Grant"),  # no: a different surname
    ],
)
def test_it_compares_names_without_case_accents_spacing_or_order(first, last):
    similar = names_similar("Mary", "Seacole", first, last)
    assert similar is (last != "Seacole-Grant")


def test_it_takes_a_shortened_first_name_under_the_same_surname_and_not_a_different_person():
    assert names_similar("Christopher", "Okafor", "Chris", "Okafor")
    assert not names_similar("Christopher", "Okafor", "Chris", "Obi")
    assert not names_similar("Ann", "Lee", "Bob", "Lee")
    assert fold_name("  José  O'Brien ") == "jose o brien"


def test_it_refuses_a_look_alike_registration_listing_the_candidates(org, clinic):
    mary = register(org, clinic)

    with pytest.raises(PossibleDuplicate) as caught:
        register(org, clinic, first_name="MARIE", phone="")
    with pytest.raises(PossibleDuplicate) as by_phone:
        register(org, None, first_name="Edwin", date_of_birth=dt.date(1960, 1, 1), phone="+44 7700 900123")

    assert caught.value.status == 409
    assert caught.value.code == "possible_duplicate"
    assert [(c.patient.mrn, c.reasons) for c in caught.value.candidates] == [
        (mary.mrn, ("name_and_date_of_birth",))
    ]
    assert [(c.patient.pk, c.reasons) for c in by_phone.value.candidates] == [(mary.pk, ("phone",))]
    assert Patient.objects.count() == 1


def test_it_registers_a_new_patient_when_told_and_says_so_in_the_trail(org, clinic):
    mary = register(org, clinic)

    twin = register(org, clinic, first_name="Marie", phone="", confirm_new_patient=True)

    event = AuditEvent.objects.get(action="patient.registered", object_id=str(twin.pk))
    assert event.data["possible_duplicates"] == [mary.pk]
    assert event.data["confirmed_new_patient"] is True
    assert not twin.duplicate_review


def test_it_does_not_match_other_organizations_or_merged_records(org, clinic, other_org):
    register(other_org, phone="+44 7700 900123")
    first, second = register(org, clinic), register(org, clinic, confirm_new_patient=True)
    patient_merge(actor=None, keep=first, merge=second)

    with pytest.raises(PossibleDuplicate) as caught:
        register(org, clinic)

    assert [c.patient.pk for c in caught.value.candidates] == [first.pk]
    assert register(org, clinic, first_name="Florence", last_name="Nightingale", phone="").pk


def test_a_portal_sign_up_that_looks_like_a_patient_is_flagged_for_review_not_refused(org, clinic):
    mary = register(org, clinic)

    signed_up = patient_register(
        email="mary@example.org",
        password="a long enough passphrase 42",
        first_name="Mary",
        last_name="Seacole",
        date_of_birth=dt.date(1985, 11, 23),
        phone="",
        clinic=clinic,
    )

    assert signed_up.duplicate_review
    assert not Patient.objects.get(pk=mary.pk).duplicate_review


def test_reception_marks_a_flagged_sign_up_reviewed(org, clinic, staff_user, doctor):
    register(org, clinic)
    flagged = register(org, clinic, first_name="Marie", flag_possible_duplicate=True)

    with pytest.raises(PermissionDenied):
        patient_duplicate_reviewed(actor=doctor.user, patient=flagged)
    patient_duplicate_reviewed(actor=staff_user, patient=flagged)

    assert not Patient.objects.get(pk=flagged.pk).duplicate_review
    assert AuditEvent.objects.filter(action="patient.duplicate_reviewed", object_id=str(flagged.pk)).exists()


# Merging


@pytest.fixture
def pair(org, clinic):
    keep = register(org, clinic)
    merge = register(org, clinic, first_name="Marie", phone="+44 7700 900999", confirm_new_patient=True)
    return keep, merge


def test_it_moves_every_record_of_the_duplicate_and_keeps_it_marked_merged(
    pair, staff_user, doctor, department, clinic, book
):
    keep, merge = pair
    appointment = book(merge, future_slot(doctor, department))
    consultation = open_consultation(doctor=doctor, department=department, patient=merge)
    allergy_record(
        actor=staff_user, patient=merge, substance="Penicillin", category="drug", severity="severe"
    )
    care_note_create(actor=staff_user, patient=merge, clinic=clinic, category="other", text="Deaf: write")
    contact_preference_set(
        actor=None, patient=merge, email_enabled=True, sms_enabled=False, in_app_enabled=True
    )
    AccessGrant.objects.create(
        organization=merge.organization,
        user=doctor.user,
        patient_id=merge.pk,
        reason="covering",
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    notifications = Notification.objects.filter(patient=merge).count()

    moved = patient_merge(actor=staff_user, keep=keep, merge=merge)

    assert Appointment.objects.filter(patient=keep).count() == 2  # the booking and the consultation's
    assert not Appointment.objects.filter(patient=merge).exists()
    assert Consultation.objects.get(pk=consultation.pk).patient_id == keep.pk
    assert Allergy.objects.get(substance="Penicillin").patient_id == keep.pk
    assert CareNote.objects.get().patient_id == keep.pk
    assert ContactPreference.objects.get().patient_id == keep.pk
    assert AccessGrant.objects.get().patient_id == keep.pk
    assert Notification.objects.filter(patient=keep).count() >= notifications
    assert Appointment.objects.get(pk=appointment.pk).patient_id == keep.pk
    merge.refresh_from_db()
    assert (merge.status, merge.merged_into_id) == (PatientStatus.MERGED, keep.pk)
    assert merge.merged_at is not None
    assert moved["scheduling.Appointment.patient"] == 2
    assert moved["patients.Allergy.patient"] == 1
    event = AuditEvent.objects.get(action="patient.merged")
    assert (event.object_id, event.actor_id) == (str(keep.pk), staff_user.pk)
    assert event.data["moved"] == moved
    assert event.data["merged_mrn"] == merge.mrn
    assert AuditEvent.objects.filter(action="patient.merged_into", object_id=str(merge.pk)).exists()


def test_it_moves_the_portal_sign_in_when_only_the_duplicate_has_one(pair, org):
    keep, merge = pair
    user = UserFactory(role=Role.PATIENT, organization=org)
    Patient.objects.filter(pk=merge.pk).update(user=user)
    merge.refresh_from_db()

    patient_merge(actor=None, keep=keep, merge=merge)

    assert Patient.objects.get(pk=keep.pk).user_id == user.pk
    assert Patient.objects.get(pk=merge.pk).user_id is None


def test_it_refuses_what_cannot_be_merged(pair, org, clinic, staff_user, doctor):
    keep, merge = pair
    elsewhere = PatientFactory(organization=OrganizationFactory())

    with pytest.raises(NotFound):
        patient_merge(actor=staff_user, keep=keep, merge=elsewhere)
    with pytest.raises(NotFound):
        patient_merge(actor=staff_user, keep=elsewhere, merge=keep)
    with pytest.raises(ValidationFailed) as same:
        patient_merge(actor=staff_user, keep=keep, merge=keep)
    with pytest.raises(PermissionDenied):
        patient_merge(actor=doctor.user, keep=keep, merge=merge)

    assert same.value.status == 400
    assert "merge" in same.value.fields
    assert not AuditEvent.objects.filter(action="patient.merged").exists()


def test_it_refuses_a_record_already_merged_either_way_round(pair, staff_user):
    keep, merge = pair
    patient_merge(actor=staff_user, keep=keep, merge=merge)

    for a, b in ((keep, merge), (merge, keep)):
        with pytest.raises(Conflict) as caught:
            patient_merge(actor=staff_user, keep=a, merge=b)
        assert caught.value.code == "already_merged"
    with pytest.raises(Conflict):
        patient_set_status(actor=staff_user, patient=merge, status=PatientStatus.ACTIVE)


def test_it_refuses_when_both_records_have_a_portal_sign_in(pair, org, staff_user):
    keep, merge = pair
    for patient in pair:
        Patient.objects.filter(pk=patient.pk).update(user=UserFactory(role=Role.PATIENT, organization=org))

    with pytest.raises(Conflict) as caught:
        patient_merge(actor=staff_user, keep=keep, merge=merge)

    assert caught.value.code == "both_have_accounts"
    assert Patient.objects.get(pk=merge.pk).status == PatientStatus.ACTIVE


def test_it_refuses_loudly_a_relation_it_does_not_know_how_to_move(pair, monkeypatch):
    keep, merge = pair
    monkeypatch.setattr(patient_services, "_merge_movers", {})  # as if notifications registered none

    with pytest.raises(ImproperlyConfigured, match=r"notifications\.ContactPreference\.patient"):
        merge_plan(merge)
    with pytest.raises(ImproperlyConfigured):
        patient_merge(actor=None, keep=keep, merge=merge)
    assert Patient.objects.get(pk=merge.pk).status == PatientStatus.ACTIVE


def test_every_relation_to_a_patient_can_be_merged_today(pair):
    # A new model pointing at Patient one-to-one or uniquely fails here until its app registers a mover.
    plan = merge_plan(pair[1])
    assert "scheduling.Appointment.patient" in plan
    assert all(isinstance(rows, int) for rows in plan.values())
    assert not any(isinstance(f, models.ManyToManyRel) for f in Patient._meta.get_fields(include_hidden=True))


@pytest.mark.django_db(transaction=True)
def test_two_merges_of_one_pair_at_once_leave_one_merged_record(org, clinic):
    keep = register(org, clinic)
    merge = register(org, clinic, first_name="Marie", phone="", confirm_new_patient=True)
    barrier = threading.Barrier(2)
    outcomes = []

    def run(a, b):
        try:
            barrier.wait()
            patient_merge(actor=None, keep=Patient.objects.get(pk=a.pk), merge=Patient.objects.get(pk=b.pk))
            outcomes.append("merged")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in ((keep, merge), (merge, keep))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["already_merged", "merged"]
    statuses = sorted(Patient.objects.values_list("status", flat=True))
    assert statuses == [PatientStatus.ACTIVE, PatientStatus.MERGED]


def test_the_kept_record_shows_who_opened_the_merged_one(pair, org, doctor):
    from opd.core.audit import audit
    from portal.selectors import ACCESS_LABELS, record_accesses

    keep, merge = pair
    action = next(iter(ACCESS_LABELS))
    audit(actor=doctor.user, action=action, obj=merge, organization_id=org.pk, patient_id=merge.pk)
    patient_merge(actor=None, keep=keep, merge=merge)
    user = UserFactory(role=Role.PATIENT, organization=org)

    assert [e.patient_id for e in record_accesses(user, Patient.objects.get(pk=keep.pk))] == [merge.pk]
    assert list(record_accesses(user, PatientFactory(organization=org))) == []
