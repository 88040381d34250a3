from __future__ import annotations

import pytest

from opd.core.models import AuditEvent
from tests.factories import DepartmentFactory, DoctorFactory

from .factories import checked_in_appointment, open_consultation


@pytest.fixture
def north_department(other_clinic):
    return DepartmentFactory(clinic=other_clinic, name="Cardiology", code="cardio")


@pytest.fixture
def north_doctor(org, north_department):
    """A doctor of the same organization who works only at the other clinic."""
    return DoctorFactory(user__username="dr-north", user__organization=org, departments=[north_department])


@pytest.fixture
def colleague(org, department):
    """Another doctor at the same clinic and department."""
    return DoctorFactory(user__username="dr-colleague", user__organization=org, departments=[department])


@pytest.fixture
def checked_in(doctor, department, patient):
    return checked_in_appointment(doctor=doctor, department=department, patient=patient)


@pytest.fixture
def consultation(doctor, department, patient):
    return open_consultation(doctor=doctor, department=department, patient=patient)


@pytest.fixture
def audit_count():
    return lambda: AuditEvent.objects.count()
