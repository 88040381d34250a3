from __future__ import annotations

import pytest

from opd.core.models import AuditEvent

from .factories import checked_in_appointment, open_consultation


@pytest.fixture
def checked_in(doctor, department, patient):
    return checked_in_appointment(doctor=doctor, department=department, patient=patient)


@pytest.fixture
def consultation(doctor, department, patient):
    return open_consultation(doctor=doctor, department=department, patient=patient)


@pytest.fixture
def audit_count():
    return lambda: AuditEvent.objects.count()
