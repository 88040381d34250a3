"""The audit trail is append-only for the application and hash-chained per organization: a DBA who changes
rows by SQL (dropping the triggers first, as one could) is caught by `audit_verify`, which names the first
bad row."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from opd.core import tasks
from opd.core.admin import AuditEventAdmin
from opd.core.audit import audit, event_mac
from opd.core.models import AuditEvent, AuditSeal, Role
from opd.core.services.audit_chain import audit_seal, audit_seal_all
from tests.factories import OrganizationFactory, UserFactory

MIGRATION = importlib.import_module("opd.core.migrations.0008_audit_append_only_and_hash_chain")


def verify(*args: str) -> tuple[int, str]:
    """Run `manage.py audit_verify`; answers (exit status, output)."""
    out = StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def write_trail(organization, actor, count: int = 5) -> list[AuditEvent]:
    return [
        audit(
            actor=actor, action="organization.changed", obj=organization, organization_id=organization.pk, n=i
        )
        for i in range(count)
    ]


@contextmanager
def as_a_dba():
    """A raw cursor on the audit tables with their triggers dropped, put back afterwards. DDL commits in
    MariaDB, so tests using this are transactional."""
    with connection.cursor() as cursor:
        for table in MIGRATION.TABLES:
            for verb in ("update", "delete"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        try:
            yield cursor
        finally:
            for table in MIGRATION.TABLES:
                for sql in MIGRATION._mysql_statements(table):
                    cursor.execute(sql)


@pytest.fixture
def trail(org):
    admin = UserFactory(organization=org, role=Role.ADMIN, username="ada", email="ada@example.org")
    events = write_trail(org, admin)
    audit_seal_all()
    return events


@pytest.mark.django_db
def test_a_change_to_any_column_but_the_id_breaks_the_mac(org, other_org, clinic, admin_user):
    event = audit(actor=None, action="patient.updated", obj=org, organization_id=org.pk)
    different = {
        "organization_id": other_org.pk,
        "actor_id": admin_user.pk,
        "actor_role": "admin",
        "action": "patient.viewed",
        "object_type": "patients.patient",
        "object_id": "999",
        "clinic_id": clinic.pk,
        "patient_id": 7,
        "source_ip": "203.0.113.9",
        "user_agent": "curl/8",
        "reason": "audit",
        "data": {"fields": ["phone"]},
        "created_at": event.created_at - dt.timedelta(microseconds=1),
    }
    columns = {f.attname for f in AuditEvent._meta.concrete_fields} - {"id", "mac"}
    assert columns <= set(different), f"a new column: add it here ({columns - set(different)})"

    for name in columns:
        changed = AuditEvent.objects.get(pk=event.pk)
        setattr(changed, name, different[name])
        assert event_mac(changed) != event.mac, name


@pytest.mark.django_db
def test_a_mac_made_before_writing_matches_the_row_read_back(org):
    event = audit(
        actor=None,
        action="user.signed_in",
        obj=org,
        organization_id=org.pk,
        tried=("a", "b"),
        when=dt.date(2026, 1, 2),
        nested={"b": 1, "a": [1.5, None]},
    )
    event.source_ip = "2001:DB8::0:1"  # as a request might carry it; stored compressed, lower case

    stored = AuditEvent.objects.get(pk=event.pk)

    assert stored.mac == event_mac(stored)


@pytest.mark.django_db
def test_it_verifies_an_untouched_trail(trail, org, superuser):
    # A superuser's action outside any organization goes on a chain of its own.
    audit(actor=superuser, action="organization.created", obj=org, organization_id=None)

    status, output = verify()

    assert status == 0, output
    assert f"Riverside Health (chain {org.pk}): {len(trail)} events chained" in output
    assert "events without an organization (chain 0): 1 events chained" in output
    assert "The audit trail verified." in output


@pytest.mark.django_db
def test_the_application_cannot_update_or_delete_audit_rows(trail):
    event = trail[0]
    writes = [
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: AuditSeal.objects.filter(event_id=event.pk).update(hash="0" * 64),
        lambda: AuditSeal.objects.filter(event_id=event.pk).delete(),
    ]
    for write in writes:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            write()

    assert AuditEvent.objects.get(pk=event.pk).action == "organization.changed"
    assert AuditSeal.objects.filter(event_id=event.pk).exists()


@pytest.mark.django_db
def test_the_admin_offers_no_way_to_change_or_delete_an_audit_event(rf, superuser, trail):
    from django.contrib import admin

    model_admin = AuditEventAdmin(AuditEvent, admin.site)
    request = rf.get("/")
    request.user = superuser

    assert not model_admin.has_change_permission(request, trail[0])
    assert not model_admin.has_delete_permission(request, trail[0])
    assert not model_admin.has_add_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


tamper = pytest.mark.django_db(transaction=True)


@tamper
def test_it_names_an_event_whose_content_was_changed(trail):
    third = trail[2]
    with as_a_dba() as sql:
        sql.execute("UPDATE core_auditevent SET data = %s WHERE id = %s", ['{"n": 99}', third.pk])

    status, output = verify()

    assert status == 1
    assert f"altered: event {third.pk} (seal 3, organization.changed) was altered or forged" in output


@tamper
def test_it_names_a_deleted_event(trail):
    third = trail[2]
    with as_a_dba() as sql:
        sql.execute("DELETE FROM core_auditevent WHERE id = %s", [third.pk])

    status, output = verify()

    assert status == 1
    assert f"deleted: event {third.pk} (seal 3) is missing: it was deleted" in output


@tamper
def test_it_names_a_deleted_seal(trail):
    with as_a_dba() as sql:
        sql.execute("DELETE FROM core_auditseal WHERE event_id = %s", [trail[1].pk])

    status, output = verify()

    assert status == 1
    assert "deleted: seal 2 is missing: the seals go from 1 to 3" in output


@tamper
def test_it_names_a_deleted_event_with_its_seal(trail):
    with as_a_dba() as sql:
        sql.execute("DELETE FROM core_auditseal WHERE event_id = %s", [trail[3].pk])
        sql.execute("DELETE FROM core_auditevent WHERE id = %s", [trail[3].pk])

    status, output = verify()

    assert status == 1
    assert "seal 4 is missing" in output


@tamper
def test_it_names_a_forged_event_inserted_now(trail, org):
    with as_a_dba() as sql:
        sql.execute(
            "INSERT INTO core_auditevent (organization_id, actor_role, action, object_type, object_id, "
            "user_agent, reason, data, created_at, mac) VALUES (%s, 'admin', 'patient.updated', "
            "'patients.patient', '1', '', '', '{}', %s, %s)",
            [org.pk, timezone.now(), "f" * 64],
        )
        forged = sql.lastrowid

    status, output = verify()

    assert status == 1
    assert f"altered: event {forged} (seal 6, patient.updated) was altered or forged" in output


@tamper
def test_it_names_an_event_inserted_into_the_past(trail, org):
    with as_a_dba() as sql:
        sql.execute(
            "INSERT INTO core_auditevent (organization_id, actor_role, action, object_type, object_id, "
            "user_agent, reason, data, created_at, mac) VALUES (%s, 'admin', 'patient.updated', "
            "'patients.patient', '1', '', '', '{}', %s, '')",
            [org.pk, timezone.now() - dt.timedelta(days=30)],
        )
        forged = sql.lastrowid

    status, output = verify()

    assert status == 1
    assert f"inserted: event {forged} (patient.updated" in output
    assert "has no seal although older than the sealing margin" in output


@tamper
def test_it_names_reordered_seals(trail):
    second, third = trail[1].pk, trail[2].pk
    with as_a_dba() as sql:
        sql.execute("UPDATE core_auditseal SET event_id = -1 WHERE event_id = %s", [second])
        sql.execute("UPDATE core_auditseal SET event_id = %s WHERE event_id = %s", [second, third])
        sql.execute("UPDATE core_auditseal SET event_id = %s WHERE event_id = -1", [third])

    status, output = verify()

    assert status == 1
    assert f"seal: seal 2 (event {third}) does not match the event" in output


@tamper
def test_it_names_events_whose_ids_were_swapped(trail):
    second, third = trail[1].pk, trail[2].pk
    with as_a_dba() as sql:
        sql.execute("UPDATE core_auditevent SET id = -1 WHERE id = %s", [second])
        sql.execute("UPDATE core_auditevent SET id = %s WHERE id = %s", [second, third])
        sql.execute("UPDATE core_auditevent SET id = %s WHERE id = -1", [third])

    status, output = verify()

    assert status == 1
    assert f"seal: seal 2 (event {second}) does not match the event" in output


@tamper
def test_it_names_a_seal_rewritten_without_the_key(trail):
    with as_a_dba() as sql:
        sql.execute("UPDATE core_auditseal SET hash = %s WHERE seq = 2", ["a" * 64])

    status, output = verify()

    assert status == 1
    assert f"seal: seal 2 (event {trail[1].pk}) does not match the event" in output


@tamper
def test_it_checks_one_organization_when_asked(trail, org):
    other = OrganizationFactory(name="Hillside Care", slug="hillside")
    write_trail(other, None, count=2)
    with as_a_dba() as sql:
        sql.execute("UPDATE core_auditevent SET action = 'x' WHERE id = %s", [trail[0].pk])

    assert verify("--organization", "hillside")[0] == 0
    status, output = verify("--organization", str(org.pk))
    assert status == 1
    assert f"event {trail[0].pk}" in output


@tamper
def test_the_daily_check_mails_the_admins_of_the_organization_that_failed(trail, org):
    other = OrganizationFactory(name="Hillside Care", slug="hillside")
    UserFactory(organization=other, role=Role.ADMIN, email="hal@example.org")
    UserFactory(organization=org, role=Role.STAFF, email="sam@example.org")
    with as_a_dba() as sql:
        sql.execute("DELETE FROM core_auditevent WHERE id = %s", [trail[2].pk])

    failed = tasks.audit_verify_daily()

    assert failed == 1
    sent = {message.subject: message for message in mail.outbox}
    alarm = sent["AUDIT TRAIL VERIFICATION FAILED: Riverside Health"]
    assert alarm.to == ["ada@example.org"]
    assert f"event {trail[2].pk} (seal 3) is missing" in alarm.body
    assert sent["Audit trail verified: Hillside Care"].to == ["hal@example.org"]


@pytest.mark.django_db(transaction=True)
def test_sealers_in_two_threads_make_one_chain(org):
    write_trail(org, None, count=300)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def seal() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                audit_seal(chain=org.pk)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=seal) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(AuditSeal.objects.filter(chain=org.pk).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 301))
    assert verify("--organization", "riverside")[0] == 0


@pytest.mark.django_db(transaction=True)
def test_it_seals_a_row_committed_after_later_rows_were_sealed(org):
    written, commit = threading.Event(), threading.Event()

    def slow_transaction() -> None:
        try:
            with transaction.atomic():
                audit(actor=None, action="slow.transaction", obj=org, organization_id=org.pk)
                written.set()
                commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    written.wait(timeout=30)
    write_trail(org, None, count=2)
    assert audit_seal(chain=org.pk) == 2
    commit.set()
    thread.join()

    assert audit_seal(chain=org.pk) == 1
    assert (
        AuditSeal.objects.get(chain=org.pk, seq=3).event_id
        == AuditEvent.objects.get(action="slow.transaction").pk
    )
    assert verify()[0] == 0


@pytest.mark.django_db
def test_beat_seals_every_minute_and_verifies_daily(org):
    from django.conf import settings

    from opd.celery import app as celery_app

    celery_app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["core.audit_seal"]["schedule"] == 60.0
    assert {schedule[name]["task"] for name in ("core.audit_seal", "core.audit_verify_daily")} <= set(
        celery_app.tasks
    )
    write_trail(org, None, count=3)

    assert tasks.audit_seal() == 3
    assert tasks.audit_seal() == 0


@tamper
def test_rows_written_before_this_release_get_a_mac_and_verify(org):
    from django.apps import apps

    with as_a_dba() as sql:
        sql.execute(
            "INSERT INTO core_auditevent (organization_id, actor_role, action, object_type, object_id, "
            "user_agent, reason, data, created_at, mac) VALUES (%s, '', 'clinic.created', 'core.clinic', '1', "
            "'', '', %s, %s, '')",
            [org.pk, '{"fields": ["name"]}', timezone.now() - dt.timedelta(days=400)],
        )
        MIGRATION.mac_existing_events(apps, None)

    assert verify()[0] == 0
