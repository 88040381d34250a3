"""One vocabulary of appointment states (scheduling.models.STATUS_LABELS): the dashboard, the waiting
room, the portal and the admin call one visit by the same words at each step."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduling.models import STATUS_LABELS
from scheduling.services import appointment_start, queue_call_next
from tests.consultations.factories import complete_visit

from .queue_helpers import waiting

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_each_surface_names_each_step_of_a_visit_the_same_way(
    client, staff_user, doctor, department, patient
):
    appt = waiting(staff_user, doctor, department, minutes=5, patient=patient)
    surfaces = {
        "dashboard": (doctor.user, reverse("queue:dashboard")),
        "waiting room": (staff_user, reverse("queue:waiting-room", args=[appt.clinic_id])),
        "portal": (patient.user, reverse("portal:appointments")),
        "portal appointment": (patient.user, reverse("portal:appointment", args=[appt.pk])),
        "admin": (staff_user, reverse("admin:scheduling_appointment_changelist")),
    }

    def seen_on(label: str) -> set[str]:
        return {name for name, (user, url) in surfaces.items() if label in page(client, user, url)}

    # Waiting: the screen in the waiting room shows tokens only, no states; the others say it.
    assert seen_on(STATUS_LABELS["waiting"]) >= {"portal", "portal appointment", "admin"}

    queue_call_next(actor=doctor.user, doctor=doctor)
    assert seen_on(STATUS_LABELS["called"]) == set(surfaces)

    appointment_start(actor=doctor.user, appointment=appt)
    assert seen_on(STATUS_LABELS["in_consultation"]) == set(surfaces)

    complete_visit(actor=doctor.user, appointment=appt)  # the only way a visit completes: its record
    assert seen_on(STATUS_LABELS["completed"]) >= {"dashboard", "portal", "portal appointment", "admin"}

    # The words the issue found in two versions are gone.
    assert not seen_on("Called, on the way")


def test_the_labels_cover_every_status():
    from scheduling.models import AppointmentStatus

    assert {*AppointmentStatus.values, "waiting", "called"} - {"checked_in"} == set(STATUS_LABELS)
