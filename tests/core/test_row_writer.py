"""opd.core.db.RowWriter writes the rows save() would write: the same values read back, field by field."""

from __future__ import annotations

import datetime as dt
import decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, signals

from opd.core.audit import event_mac
from opd.core.db import RowWriter
from opd.core.models import AuditEvent, OutboxEvent
from opd.core.services.audit_chain import audit_seal_all
from patients.models import Patient
from scheduling.models import Appointment, AppointmentStatus, Slot

MOMENT = dt.datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=dt.UTC)


def twin(obj, **changes):
    """A new, unsaved instance with `obj`'s value in every column but the id."""
    model = type(obj)
    values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    return model(**{**values, **changes})


def read_back(obj, *, but=()):
    """Every column but the id (and `but`), as the ORM reads the row back."""
    model = type(obj)
    fresh = model._base_manager.get(pk=obj.pk)
    skip = {"id", *but}
    return {
        f.attname: getattr(fresh, f.attname) for f in model._meta.concrete_fields if f.attname not in skip
    }


def raw_columns(obj, *columns):
    table = connection.ops.quote_name(type(obj)._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE id = %s", [obj.pk])  # noqa: S608
        return cursor.fetchone()


def appointment_in(slot, patient, seat, **extra) -> Appointment:
    """An unsaved appointment of `patient` on `seat` of `slot`, its where and when copied from the slot."""
    return Appointment(
        organization_id=slot.organization_id,
        clinic_id=slot.clinic_id,
        department_id=slot.department_id,
        doctor_id=slot.doctor_id,
        patient=patient,
        slot=slot,
        seat=seat,
        start=slot.start,
        end=slot.end,
        **extra,
    )


def save_new(obj: Appointment) -> Appointment:
    obj.save(force_insert=True)  # as Appointment.objects.create does
    return obj


@pytest.mark.django_db
def test_an_appointment_it_inserts_reads_back_as_one_save_inserted(patient, slot, staff_user):
    by_save = appointment_in(
        slot, patient, 1, reason="Cough, three weeks", channel="portal", booked_by=staff_user
    )
    by_writer = twin(by_save, seat=2)
    with time_machine.travel(MOMENT, tick=False):  # booked_at (auto_now_add) and updated_at (auto_now)
        by_save.save(force_insert=True)
        RowWriter(Appointment).insert(by_writer)

    assert by_writer.pk is not None
    assert by_writer.pk != by_save.pk
    assert (by_writer._state.adding, by_writer._state.db) == (False, "default")
    assert by_writer.booked_at == by_writer.updated_at == MOMENT
    assert read_back(by_writer, but={"seat"}) == read_back(by_save, but={"seat"})
    assert Appointment.objects.get(pk=by_writer.pk).seat == 2


@pytest.mark.django_db
def test_an_update_writes_what_save_with_update_fields_writes(patient, other_patient, slot):
    fields = ["status", "seat", "cancelled_at", "cancellation_reason", "updated_at"]
    with time_machine.travel(MOMENT, tick=False):
        first, second = [
            save_new(appointment_in(slot, who, seat)) for who, seat in ((patient, 1), (other_patient, 2))
        ]
    for appointment in (first, second):
        appointment.status, appointment.seat = AppointmentStatus.CANCELLED, None
        appointment.cancelled_at, appointment.cancellation_reason = MOMENT, "Feeling better"
        appointment.reason = "not in the fields: stays as it was"
    with time_machine.travel(MOMENT + dt.timedelta(hours=1), tick=False):
        first.save(update_fields=fields)
        RowWriter(Appointment, fields).update(second)

    assert read_back(second, but={"patient_id"}) == read_back(first, but={"patient_id"})
    shown = Appointment.objects.get(pk=second.pk)
    assert (shown.status, shown.seat, shown.reason) == (AppointmentStatus.CANCELLED, None, "")
    assert shown.updated_at == MOMENT + dt.timedelta(hours=1)


@pytest.mark.django_db
def test_encrypted_fields_and_blind_indexes_read_back_as_save_wrote_them(org):
    by_save = Patient(
        organization=org,
        mrn="MRN-W-1",
        first_name="Ada",
        last_name="Lovelace",
        date_of_birth=dt.date(1980, 5, 17),
        phone="+442079460001",
        email="ada@example.org",
        address="12 St James's Square, London",
        insurance_policy_number="POL-778-12",
    )
    by_writer = twin(by_save, mrn="MRN-W-2")
    with time_machine.travel(MOMENT, tick=False):
        by_save.save(force_insert=True)
        RowWriter(Patient).insert(by_writer)

    assert read_back(by_writer, but={"mrn"}) == read_back(by_save, but={"mrn"})
    # At rest: ciphertext (not the number), and the same keyed index, so equality search finds both.
    phone, index = raw_columns(by_writer, "phone", "phone_index")
    assert "7946" not in phone
    assert index == raw_columns(by_save, "phone_index")[0] != ""
    assert set(Patient.objects.filter(phone_index=index)) == {by_save, by_writer}


@pytest.mark.django_db
def test_an_audit_row_it_inserts_reads_back_as_save_wrote_it_and_the_trail_verifies(org, staff_user):
    by_save = AuditEvent(
        organization_id=org.pk,
        actor=staff_user,
        actor_role=staff_user.role,
        action="appointment.booked",
        object_type="scheduling.appointment",
        object_id="17",
        source_ip="2001:DB8::0:1",
        user_agent="pytest",
        data={"slot": 3, "when": "2026-01-02", "nested": {"b": 1, "a": [1.5, None]}},
        created_at=MOMENT,
    )
    by_save.mac = event_mac(by_save)
    by_writer = twin(by_save)
    by_save.save(force_insert=True)
    RowWriter(AuditEvent).insert(by_writer)

    assert read_back(by_writer) == read_back(by_save)
    stored = AuditEvent.objects.get(pk=by_writer.pk)
    assert stored.mac == event_mac(stored) == by_save.mac
    audit_seal_all()
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "The audit trail verified." in out.getvalue()


@pytest.mark.django_db
def test_an_outbox_row_keeps_its_payload_as_save_wrote_it():
    payload = {
        "appointment_id": 5,
        "day": dt.date(2026, 3, 4),
        "start": MOMENT,
        "amount": decimal.Decimal("1.50"),
        "queues": ["doctor:1"],
    }
    by_save = OutboxEvent(event="appointment.booked", payload=payload, created_at=MOMENT, due_at=MOMENT)
    by_writer = twin(by_save)
    by_save.save(force_insert=True)
    RowWriter(OutboxEvent).insert(by_writer)

    assert read_back(by_writer) == read_back(by_save)
    assert raw_columns(by_writer, "payload") == raw_columns(by_save, "payload")


@pytest.mark.django_db
def test_it_sends_the_signals_save_sends(slot):
    heard = []

    def receiver(signal, sender, instance, **kwargs):
        heard.append((signal, sender, kwargs))

    for signal in (signals.pre_save, signals.post_save):
        signal.connect(receiver, sender=Slot, dispatch_uid="row-writer-test")
    try:
        slot.booked_count = 1
        slot.save(update_fields=["booked_count"])
        by_save, heard[:] = list(heard), []
        slot.booked_count = 2
        RowWriter(Slot, ["booked_count"]).update(slot)
        by_writer, heard[:] = list(heard), []
        copy = twin(slot, start=slot.start + dt.timedelta(days=1), end=slot.end + dt.timedelta(days=1))
        copy.save(force_insert=True)
        insert_by_save, heard[:] = list(heard), []
        later = dt.timedelta(days=1)
        RowWriter(Slot).insert(twin(copy, start=copy.start + later, end=copy.end + later))
        insert_by_writer = list(heard)
    finally:
        for signal in (signals.pre_save, signals.post_save):
            signal.disconnect(receiver, sender=Slot, dispatch_uid="row-writer-test")

    assert by_writer == by_save
    assert insert_by_writer == insert_by_save
    assert [kwargs.get("created") for _, _, kwargs in insert_by_writer] == [None, True]
    assert Slot.objects.get(pk=slot.pk).booked_count == 2


@pytest.mark.django_db
def test_a_failed_insert_marks_the_transaction_for_rollback_as_save_does(patient, slot):
    existing = save_new(appointment_in(slot, patient, 1))
    with transaction.atomic(savepoint=True):
        with pytest.raises(IntegrityError):
            RowWriter(Appointment).insert(twin(existing))  # the same seat of the same slot
        assert connection.needs_rollback


@pytest.mark.django_db
def test_it_refuses_what_it_cannot_write_as_save_would(slot):
    gone = Slot.objects.get(pk=slot.pk)
    Slot.objects.filter(pk=slot.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        RowWriter(Slot, ["booked_count"]).update(gone)
    with pytest.raises(ValueError, match="fields"):
        RowWriter(Slot, ["no_such_field"])
    expression = twin(gone, capacity=F("booked_count") + 1)
    with pytest.raises(TypeError, match="expressions"):
        RowWriter(Slot).insert(expression)
    unsaved_patient = Patient(organization_id=slot.organization_id)
    with pytest.raises(ValueError, match="unsaved related object"):
        RowWriter(Appointment).insert(Appointment(patient=unsaved_patient, slot=gone))
