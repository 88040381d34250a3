import datetime as dt

import pytest
from django.utils import timezone

from opd.core.models import IdempotencyRecord
from opd.core.tasks import purge_idempotency_records

pytestmark = pytest.mark.django_db


def test_it_forgets_idempotency_answers_after_a_day_and_keeps_recent_ones(staff_user):
    old = IdempotencyRecord.objects.create(user=staff_user, key="old", scope="book", fingerprint="x")
    recent = IdempotencyRecord.objects.create(user=staff_user, key="new", scope="book", fingerprint="y")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))

    removed = purge_idempotency_records.apply().get()

    assert removed == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [recent.pk]


def test_it_purges_expired_break_the_glass_grants_and_keeps_live_ones_and_their_log(
    settings, doctor, patient
):
    from opd.core.models import AccessGrant, AuditEvent
    from opd.core.tasks import purge_access_grants

    now = timezone.now()
    expired = AccessGrant.objects.create(
        organization=patient.organization,
        user=doctor.user,
        patient_id=patient.pk,
        reason="old",
        expires_at=now,
    )
    live = AccessGrant.objects.create(
        organization=patient.organization,
        user=doctor.user,
        patient_id=patient.pk,
        reason="now",
        expires_at=now + dt.timedelta(minutes=10),
    )
    logged = AuditEvent.objects.count()

    assert purge_access_grants.apply().get() == 1
    assert list(AccessGrant.objects.values_list("pk", flat=True)) == [live.pk]
    assert not AccessGrant.objects.filter(pk=expired.pk).exists()
    assert AuditEvent.objects.count() == logged  # the access log is not touched
    assert settings.CELERY_BEAT_SCHEDULE["core.purge_access_grants"]["task"] == "core.purge_access_grants"
