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
