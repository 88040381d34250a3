"""Encryption at rest (#15): rows and files hold ciphertext, search goes through blind indexes, keys rotate
online and the old key can then be dropped, tampering fails loudly, the archive keeps values sealed."""

from __future__ import annotations

import datetime as dt
import io
import stat

import pytest
from django.core.exceptions import FieldError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from archive.models import ArchivedRecord
from archive.services import archival_restore, archival_run
from consultations.models import Addendum, CareNote, Consultation, Prescription, PrescriptionItem, Result
from consultations.services import (
    addendum_create,
    care_note_create,
    consultation_open,
    consultation_update,
    prescription_create,
    result_create,
)
from notifications.models import Notification
from opd.core import crypto
from opd.core.crypto import DecryptionError, generate_key
from opd.core.models import Role
from patients.models import Patient
from patients.services import patient_create
from scheduling.models import Appointment
from scheduling.services import appointment_check_in
from tests.conftest import future_slot
from tests.consultations.factories import complete
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OLD_KEY = "dGVzdC1lbmNyeXB0aW9uLWtleS0xLTMyLWJ5dGVzISE="  # opd.settings.test's key
NEW_KEY = generate_key()

# What must never be found in a column, a file, the archive or a dump.
SECRETS = {
    "phone": "+442079460777",  # stored in E.164 whatever the spelling (patients.phones)
    "email": "hidden.person@example.org",
    "address": "221B Baker Street, London",
    "emergency_contact_phone": "+442079460888",
    "insurance_policy_number": "POL-998877-XQ",
}
NOTES = {
    "chief_complaint": "Zebra-striped rash on the forearm",
    "history": "Returned from Zanzibar last Tuesday",
    "examination": "Quartzite-coloured papules",
    "assessment": "Probable xylophone dermatitis",
    "plan": "Review in a fortnight with photographs",
}
PRESCRIPTION_NOTES = "Pharmacist: check for walnut allergy"
INSTRUCTIONS = "Apply thinly after the marmalade bath"
RESULT_VALUE = "POSITIVE-FOR-PLUMBAGO"
RESULT_NOTES = "Sample haemolysed near the aquarium"
CARE_TEXT = "Patient hummed the Kyrie while waiting"
ADDENDUM = "Correction: rash was on the left forearm, gorgonzola"
PLAINTEXTS = [
    *SECRETS.values(),
    "442079460777",
    "7946 0777",
    "POL-998877",
    "998877",
    *NOTES.values(),
    PRESCRIPTION_NOTES,
    INSTRUCTIONS,
    RESULT_VALUE,
    RESULT_NOTES,
    CARE_TEXT,
    ADDENDUM,
]

ENCRYPTED_COLUMNS = [
    (Patient, list(SECRETS)),
    (Consultation, list(NOTES)),
    (Prescription, ["notes"]),
    (PrescriptionItem, ["instructions"]),
    (Result, ["value", "notes"]),
    (CareNote, ["text"]),
    (Addendum, ["text"]),
]


def raw(model, column: str, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(model._meta.db_table)} "  # noqa: S608
            "WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()[0]


def raw_update(model, column: str, pk, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {connection.ops.quote_name(column)} = %s "  # noqa: S608
            "WHERE id = %s",
            [value, pk],
        )


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def make_record(*, org, clinic, department, doctor, staff_user, book, media_root):
    """A patient with every sensitive field filled in, and a completed visit with every kind of note."""
    patient = patient_create(
        actor=staff_user,
        organization=org,
        registered_at_clinic=clinic,
        first_name="Hester",
        last_name="Hiddenfield",
        date_of_birth=dt.date(1971, 3, 4),
        **SECRETS,
    )
    appointment = book(patient, future_slot(doctor, department))
    appointment_check_in(actor=staff_user, appointment=appointment, now=appointment.start)
    consultation = consultation_open(actor=doctor.user, appointment=appointment)
    consultation_update(actor=doctor.user, consultation=consultation, **NOTES)
    prescription = prescription_create(
        actor=doctor.user,
        consultation=consultation,
        notes=PRESCRIPTION_NOTES,
        items=[
            {
                "medication": "Calamine",
                "dose": "a thin layer",
                "frequency": "twice a day",
                "quantity": 1,
                "instructions": INSTRUCTIONS,
            }
        ],
    )
    result = result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="Skin swab",
        value=RESULT_VALUE,
        notes=RESULT_NOTES,
        attachment=SimpleUploadedFile("swab.pdf", PDF, content_type="application/pdf"),
    )
    consultation = complete(consultation, actor=doctor.user)
    addendum = addendum_create(actor=doctor.user, consultation=consultation, text=ADDENDUM)
    care_note = care_note_create(
        actor=staff_user, patient=patient, clinic=clinic, category="observation", text=CARE_TEXT
    )
    return {
        "patient": patient,
        "appointment": appointment,
        "consultation": consultation,
        "prescription": prescription,
        "item": prescription.items.get(),
        "result": result,
        "care_note": care_note,
        "addendum": addendum,
    }


@pytest.fixture
def record(org, clinic, department, doctor, staff_user, book, media_root):
    return make_record(
        org=org,
        clinic=clinic,
        department=department,
        doctor=doctor,
        staff_user=staff_user,
        book=book,
        media_root=media_root,
    )


def rows_of(record):
    return {
        Patient: record["patient"].pk,
        Consultation: record["consultation"].pk,
        Prescription: record["prescription"].pk,
        PrescriptionItem: record["item"].pk,
        Result: record["result"].pk,
        CareNote: record["care_note"].pk,
        Addendum: record["addendum"].pk,
    }


def assert_reads_back(record):
    patient = Patient.objects.get(pk=record["patient"].pk)
    assert {name: getattr(patient, name) for name in SECRETS} == SECRETS
    consultation = Consultation.objects.get(pk=record["consultation"].pk)
    assert {name: getattr(consultation, name) for name in NOTES} == NOTES
    assert Prescription.objects.get(pk=record["prescription"].pk).notes == PRESCRIPTION_NOTES
    assert PrescriptionItem.objects.get(pk=record["item"].pk).instructions == INSTRUCTIONS
    result = Result.objects.get(pk=record["result"].pk)
    assert (result.value, result.notes) == (RESULT_VALUE, RESULT_NOTES)
    with result.attachment.open("rb") as attachment:
        assert attachment.read() == PDF
    assert CareNote.objects.get(pk=record["care_note"].pk).text == CARE_TEXT
    assert Addendum.objects.get(pk=record["addendum"].pk).text == ADDENDUM


def test_it_stores_ciphertext_in_every_sensitive_column_and_reads_back_the_text(record):
    rows = rows_of(record)
    for model, fields in ENCRYPTED_COLUMNS:
        for name in fields:
            stored = raw(model, model._meta.get_field(name).column, rows[model])
            assert stored.startswith("e1:"), (model, name, stored)
            assert not any(text in stored for text in PLAINTEXTS), (model, name)
    # Names stay plain: name-prefix search keeps its indexes.
    assert raw(Patient, "last_name", record["patient"].pk) == "Hiddenfield"
    assert_reads_back(record)


def test_the_same_text_encrypts_differently_each_time(org, staff_user):
    patients = [
        patient_create(
            actor=staff_user,
            organization=org,
            first_name="Twin",
            last_name=str(n),
            date_of_birth=dt.date(1990, 1, 1),
            insurance_policy_number="SAME-1",
            confirm_new_patient=True,  # twins: same birthday, alike names
        )
        for n in range(2)
    ]
    stored = {raw(Patient, "insurance_policy_number", p.pk) for p in patients}
    assert len(stored) == 2  # random nonces: equal values are not visible as equal ciphertext
    assert len({p.insurance_index for p in patients}) == 1  # ...while the blind index finds both


def test_the_attachment_file_is_encrypted_private_and_served_decrypted_by_the_scoped_endpoint(
    record, media_root, api_as, doctor
):
    result = record["result"]
    path = media_root / result.attachment.name
    stored = path.read_bytes()
    assert stored.startswith(crypto.FILE_MAGIC)
    assert b"%PDF" not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    download = api_as(doctor.user).get(f"/api/v1/results/{result.pk}/attachment/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF


# Tampering


def test_an_altered_ciphertext_fails_loudly_instead_of_reading_empty(record):
    pk = record["patient"].pk
    stored = raw(Patient, "address", pk)
    flipped = stored[:-3] + ("A" if stored[-3] != "A" else "B") + stored[-2:]
    raw_update(Patient, "address", pk, flipped)

    with pytest.raises(DecryptionError, match=r"patients\.patient\.address does not decrypt"):
        Patient.objects.get(pk=pk)


def test_plaintext_written_past_the_application_fails_loudly(record):
    raw_update(CareNote, "text", record["care_note"].pk, "typed in by hand")

    with pytest.raises(DecryptionError, match="not an encrypted token"):
        CareNote.objects.get(pk=record["care_note"].pk)


def test_a_ciphertext_moved_to_another_column_does_not_decrypt(record):
    pk = record["patient"].pk
    raw_update(Patient, "phone", pk, raw(Patient, "insurance_policy_number", pk))

    with pytest.raises(DecryptionError, match=r"patients\.patient\.phone does not decrypt"):
        Patient.objects.get(pk=pk)


def test_an_altered_attachment_file_fails_loudly(record, media_root):
    path = media_root / record["result"].attachment.name
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))

    with pytest.raises(DecryptionError, match="altered or truncated"):
        Result.objects.get(pk=record["result"].pk).attachment.open("rb")


def test_searching_an_encrypted_column_directly_is_refused_not_silently_empty():
    with pytest.raises(FieldError, match="is encrypted"):
        list(Patient.objects.filter(phone="+44 20 7946 0777"))
    with pytest.raises(FieldError, match="Unsupported lookup"):
        list(Consultation.objects.filter(plan__icontains="fortnight"))
    assert list(Patient.objects.filter(phone="")) == []  # blank stays blank and comparable


# Search through the blind indexes


@pytest.mark.parametrize("term", ["+44 20 7946 0777", "020 7946 0777", "442079460777", "7946-0777"])
def test_it_finds_a_patient_by_phone_through_the_api(record, api_as, staff_user, term):
    response = api_as(staff_user).get("/api/v1/patients/", {"search": term})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [record["patient"].pk]


@pytest.mark.parametrize("term", ["POL-998877-XQ", "pol 998877 xq", "POL998877XQ"])
def test_it_finds_a_patient_by_insurance_policy_number_through_the_api(record, api_as, staff_user, term):
    response = api_as(staff_user).get("/api/v1/patients/", {"search": term})

    assert [row["id"] for row in response.json()["results"]] == [record["patient"].pk]


def test_a_part_of_a_policy_number_finds_nobody(record, api_as, staff_user):
    response = api_as(staff_user).get("/api/v1/patients/", {"search": "998877"})

    assert response.json()["results"] == []


def test_it_finds_a_patient_by_phone_and_policy_number_in_the_admin(record, client, staff_user):
    client.force_login(staff_user)
    changelist = reverse("admin:patients_patient_changelist")

    for term in ("020 7946 0777", "POL-998877-XQ"):
        response = client.get(changelist, {"q": term})
        assert response.status_code == 200
        assert [p.pk for p in response.context["cl"].result_list] == [record["patient"].pk]


def test_another_organizations_patient_is_not_found_by_phone(record, api_as, other_org):
    other_admin = UserFactory(role=Role.ADMIN, organization=other_org, is_staff=True)
    response = api_as(other_admin).get("/api/v1/patients/", {"search": SECRETS["phone"]})

    assert response.json()["results"] == []


# Rotation


def stored_key_ids(record) -> set[str]:
    ids = set()
    for model, fields in ENCRYPTED_COLUMNS:
        for name in fields:
            ids.add(
                crypto.token_key_id(raw(model, model._meta.get_field(name).column, rows_of(record)[model]))
            )
    return ids


def test_rotation_re_encrypts_everything_then_the_old_key_can_be_dropped(record, settings, media_root):
    old_id = crypto.keyring().current_id
    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    new_id = crypto.keyring().current_id
    assert new_id != old_id
    assert_reads_back(record)  # both keys configured: old values read, new writes use the new key

    out = io.StringIO()
    call_command("rotate_keys", "--batch-size", "1", stdout=out)

    assert stored_key_ids(record) == {new_id}
    assert crypto.blob_key_id((media_root / record["result"].attachment.name).read_bytes()) == new_id
    assert "patients.patient.phone: 1 re-encrypted" in out.getvalue()
    assert "consultations.consultation.plan: 1 re-encrypted" in out.getvalue()
    assert "attachment files: 1 re-encrypted" in out.getvalue()
    again = io.StringIO()
    call_command("rotate_keys", stdout=again)
    assert "Re-encrypted 0 values and files." in again.getvalue()  # idempotent

    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY]
    assert_reads_back(record)
    # The booking's messages carry the patient's phone and e-mail: rotated too.
    sent_to = set(Notification.objects.filter(patient=record["patient"]).values_list("to", flat=True))
    assert SECRETS["phone"] in sent_to


def test_without_rotation_dropping_the_old_key_fails_loudly_naming_it(record, settings):
    old_id = crypto.keyring().current_id
    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(DecryptionError, match=f"encrypted with key {old_id}"):
        Patient.objects.get(pk=record["patient"].pk)


def test_rotation_encrypts_a_file_that_predates_encryption(record, media_root):
    path = media_root / record["result"].attachment.name
    path.write_bytes(PDF)  # as written before this release

    call_command("rotate_keys", stdout=io.StringIO())

    assert path.read_bytes().startswith(crypto.FILE_MAGIC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Result.objects.get(pk=record["result"].pk).attachment.open("rb") as attachment:
        assert attachment.read() == PDF


def test_a_new_blind_index_key_keeps_search_working_while_indexes_are_recomputed(
    record, settings, api_as, staff_user
):
    def found(term):
        return [
            r["id"] for r in api_as(staff_user).get("/api/v1/patients/", {"search": term}).json()["results"]
        ]

    old_blind = settings.OPD_BLIND_INDEX_KEY
    settings.OPD_BLIND_INDEX_KEY = generate_key()
    assert found(SECRETS["phone"]) == []  # the stored indexes are under the old key...
    settings.OPD_BLIND_INDEX_KEY_PREVIOUS = old_blind
    assert found(SECRETS["phone"]) == [record["patient"].pk]  # ...which search also tries meanwhile

    out = io.StringIO()
    call_command("rotate_keys", "--blind-index", stdout=out)
    settings.OPD_BLIND_INDEX_KEY_PREVIOUS = ""

    assert "patients.patient.phone_index: 1 recomputed" in out.getvalue()
    assert "patients.patient.insurance_index: 1 recomputed" in out.getvalue()
    assert found(SECRETS["phone"]) == [record["patient"].pk]
    assert found(SECRETS["insurance_policy_number"]) == [record["patient"].pk]


# The archive


def archive_the_visit(record):
    Appointment.objects.filter(pk=record["appointment"].pk).update(
        start=record["appointment"].start - dt.timedelta(days=6 * 365),
        end=record["appointment"].end - dt.timedelta(days=6 * 365),
    )
    archival_run()


def test_archived_clinical_content_stays_encrypted_and_restores_readable(record):
    archive_the_visit(record)
    archived = list(ArchivedRecord.objects.values_list("model", "data"))
    assert {"consultations.consultation", "consultations.prescriptionitem", "consultations.result"} <= {
        m for m, _ in archived
    }
    dumped = repr(archived)
    assert [t for t in PLAINTEXTS if t in dumped] == [], [
        (m, d) for m, d in archived if any(t in repr(d) for t in PLAINTEXTS)
    ]
    consultation_data = next(d for m, d in archived if m == "consultations.consultation")
    assert consultation_data["fields"]["plan"].startswith("e1:")

    archival_restore(root_model="scheduling.appointment", root_pks=[record["appointment"].pk])

    assert raw(Consultation, "plan", record["consultation"].pk).startswith("e1:")
    assert_reads_back(record)


def test_rotation_re_encrypts_archived_copies_so_a_restore_works_without_the_old_key(record, settings):
    archive_the_visit(record)
    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "archived copies:" in out.getvalue()
    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY]

    archival_restore(root_model="scheduling.appointment", root_pks=[record["appointment"].pk])

    assert_reads_back(record)


# Existing rows and online safety


def test_the_data_migration_step_encrypts_plaintext_rows_in_batches_once(record):
    from django.apps import apps

    from opd.core.services.encryption import migrate_encrypt_columns

    pk = record["care_note"].pk
    raw_update(CareNote, "text", pk, "Written before encryption")  # as a row from before this release

    migrate_encrypt_columns(apps, None, "consultations.CareNote", ["text"], batch_size=1)
    sealed = raw(CareNote, "text", pk)
    migrate_encrypt_columns(apps, None, "consultations.CareNote", ["text"], batch_size=1)

    assert sealed.startswith("e1:")
    assert raw(CareNote, "text", pk) == sealed  # a second run leaves sealed values alone
    assert CareNote.objects.get(pk=pk).text == "Written before encryption"


def test_rotation_never_overwrites_a_value_the_application_wrote_meanwhile(record, settings):
    from opd.core.services.encryption import _compare_and_set

    pk = record["patient"].pk
    read_by_rotation = raw(Patient, "address", pk)
    settings.OPD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    Patient.objects.filter(pk=pk).update(address="New address, written by a user")  # a save meanwhile

    rotated = crypto.encrypt(
        crypto.decrypt(read_by_rotation, "patients.patient.address"), "patients.patient.address"
    )
    assert _compare_and_set("patients_patient", "id", pk, "address", read_by_rotation, rotated) == 0
    assert Patient.objects.get(pk=pk).address == "New address, written by a user"


def test_rotation_reports_values_written_past_the_application_and_leaves_them(record):
    raw_update(Addendum, "text", record["addendum"].pk, "typed into the database by hand")
    err = io.StringIO()

    call_command("rotate_keys", stdout=io.StringIO(), stderr=err)

    assert "consultations.addendum: 1 values are not encrypted tokens" in err.getvalue()
    assert raw(Addendum, "text", record["addendum"].pk) == "typed into the database by hand"
