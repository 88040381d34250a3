"""Triage vitals (consultations.services.triage): who records them, what a high NEWS2 does to the queue,
the alert to the doctor, the prefill of the consultation and the re-score reminder."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from consultations import news2
from consultations.models import TriageObservation
from consultations.services import (
    consultation_open,
    consultation_update,
    triage_record,
    triage_rescore_reminders,
)
from opd.core import events
from opd.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from opd.core.models import AuditEvent, Membership, Role
from opd.core.services import membership_add, membership_set_nurse
from scheduling.models import Appointment
from scheduling.selectors import doctor_day
from scheduling.services import appointment_mark_no_show, queue_call_next
from tests.factories import PatientFactory, UserFactory

from .factories import CALM_VITALS, booked_appointment, checked_in_appointment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]

# 3 + 3 + 0 + 2 + 2 + 0 + 1 = 11: high band, emergency response.
HIGH_VITALS = {
    **CALM_VITALS,
    "respiratory_rate": 26,
    "spo2": 90,
    "systolic_bp": 95,
    "diastolic_bp": 60,
    "pulse": 125,
    "temperature": Decimal("38.5"),
}
# 2 + 1 + 0 + 0 + 1 + 0 + 1 = 5: medium band, urgent response.
MEDIUM_VITALS = {
    **CALM_VITALS,
    "respiratory_rate": 22,
    "spo2": 95,
    "pulse": 95,
    "temperature": Decimal("38.5"),
}
# New confusion alone scores 3: low-medium, an urgent ward-based response.
CONFUSED_VITALS = {**CALM_VITALS, "consciousness": "C"}


@pytest.fixture
def alerts():
    """The QUEUE_ALERT events published (after commit) while the test runs."""
    seen: list[dict] = []

    def handler(**payload):
        seen.append(payload)

    events.subscribe(events.QUEUE_ALERT, handler)
    yield seen
    events.unsubscribe(events.QUEUE_ALERT, handler)


@pytest.fixture
def waiting_pair(doctor, department, patient, other_patient):
    """Two patients waiting for the doctor: `first` booked earlier, so ahead in the queue."""
    first = checked_in_appointment(doctor=doctor, department=department, patient=other_patient)
    second = checked_in_appointment(doctor=doctor, department=department, patient=patient)
    return first, second


def waiting_order(doctor) -> list[int]:
    return [appt.pk for appt in doctor_day(doctor, now=timezone.now()).waiting]


def events_of(action: str, appointment: Appointment | None = None):
    qs = AuditEvent.objects.filter(action=action)
    if appointment is not None:
        qs = qs.filter(object_id=str(appointment.pk))
    return list(qs.order_by("created_at", "id"))


# Recording


def test_it_records_a_nurses_vitals_with_their_news2(nurse, checked_in):
    observation = triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)

    stored = TriageObservation.objects.get(pk=observation.pk)
    assert (stored.recorded_by, stored.appointment, stored.patient_id) == (
        nurse,
        checked_in,
        checked_in.patient_id,
    )
    assert (stored.news2_total, stored.news2_band) == (0, news2.LOW)
    assert stored.news2_response.level == news2.ROUTINE
    [event] = events_of("triage.recorded")
    assert event.actor == nurse
    assert event.patient_id == checked_in.patient_id
    assert event.data["news2_total"] == 0


def test_it_leaves_the_score_empty_while_a_parameter_is_missing(nurse, checked_in):
    observation = triage_record(actor=nurse, appointment=checked_in, pulse=80, systolic_bp=120)

    assert observation.news2_total is None
    assert observation.news2_band == ""
    assert "respiratory_rate" in observation.news2_missing


def test_it_lets_the_clinics_doctors_record_too(doctor, colleague, checked_in):
    triage_record(actor=colleague.user, appointment=checked_in, **CALM_VITALS)
    triage_record(actor=doctor.user, appointment=checked_in, pulse=72)

    assert TriageObservation.objects.filter(appointment=checked_in).count() == 2


# A high score moves the patient up


def test_it_moves_a_high_scoring_patient_to_the_front_at_once(nurse, doctor, waiting_pair):
    first, second = waiting_pair
    assert waiting_order(doctor) == [first.pk, second.pk]

    triage_record(actor=nurse, appointment=second, **HIGH_VITALS)

    assert waiting_order(doctor) == [second.pk, first.pk]
    second.refresh_from_db()
    assert second.is_priority
    assert second.priority_reason == "NEWS2 high (11)"
    [event] = events_of("appointment.priority", second)
    assert event.actor == nurse
    assert event.data["old_band"] == ""
    assert event.data["new_band"] == news2.HIGH


@pytest.mark.parametrize(
    ("vitals", "band"), [(MEDIUM_VITALS, news2.MEDIUM), (CONFUSED_VITALS, news2.LOW_MEDIUM)]
)
def test_it_moves_up_a_medium_band_or_a_single_parameter_scoring_three(
    nurse, doctor, waiting_pair, vitals, band
):
    first, second = waiting_pair

    observation = triage_record(actor=nurse, appointment=second, **vitals)

    assert observation.news2_band == band
    assert waiting_order(doctor) == [second.pk, first.pk]


def test_it_leaves_a_low_score_in_its_place(nurse, doctor, waiting_pair):
    first, second = waiting_pair

    triage_record(actor=nurse, appointment=second, **{**CALM_VITALS, "pulse": 95})  # 1: ward-based

    assert waiting_order(doctor) == [first.pk, second.pk]
    assert events_of("appointment.priority") == []


def test_it_audits_the_band_before_and_after(nurse, checked_in):
    triage_record(actor=nurse, appointment=checked_in, **MEDIUM_VITALS)
    triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)

    bands = [(event.data["old_band"], event.data["new_band"]) for event in events_of("appointment.priority")]
    assert bands == [("", news2.MEDIUM), (news2.MEDIUM, news2.HIGH)]


# The alert to the doctor


def test_it_alerts_the_doctor_when_triage_raises_the_response_to_emergency(
    nurse, doctor, checked_in, alerts, committed
):
    with committed():
        triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)

    [alert] = alerts
    assert alert["doctor_id"] == doctor.pk
    assert alert["appointment_id"] == checked_in.pk
    assert alert["alert"]["kind"] == "news2"
    assert alert["alert"]["level"] == news2.EMERGENCY
    assert alert["alert"]["title"] == "Emergency response"
    assert alert["alert"]["patient"] == checked_in.patient.full_name
    [event] = events_of("news2.alert", checked_in)
    assert (event.data["old_level"], event.data["new_level"]) == ("", news2.EMERGENCY)


def test_it_alerts_once_per_rise_not_on_every_set(nurse, checked_in, alerts, committed):
    with committed():
        triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
        triage_record(actor=nurse, appointment=checked_in, **MEDIUM_VITALS)  # routine -> urgent
        triage_record(actor=nurse, appointment=checked_in, **MEDIUM_VITALS)  # urgent again: no alert
        triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)  # urgent -> emergency

    assert [alert["alert"]["level"] for alert in alerts] == [news2.URGENT, news2.EMERGENCY]


def test_it_does_not_alert_for_an_urgent_ward_based_response(nurse, checked_in, alerts, committed):
    with committed():
        triage_record(actor=nurse, appointment=checked_in, **CONFUSED_VITALS)

    assert alerts == []


def test_it_alerts_when_the_consultations_vitals_raise_the_response(
    doctor, nurse, checked_in, alerts, committed
):
    with committed():
        triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
        consultation = consultation_open(actor=doctor.user, appointment=checked_in)
        consultation_update(actor=doctor.user, consultation=consultation, **HIGH_VITALS)
        consultation_update(actor=doctor.user, consultation=consultation, pulse=130)  # still emergency

    assert [(a["alert"]["level"], a["alert"]["source"]) for a in alerts] == [
        (news2.EMERGENCY, "consultation")
    ]
    [event] = events_of("news2.alert", checked_in)
    assert (event.data["old_level"], event.data["new_level"]) == (news2.ROUTINE, news2.EMERGENCY)


# The consultation starts from the triage vitals


def test_it_prefills_the_consultation_with_the_latest_triage_vitals(nurse, doctor, checked_in):
    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    latest = triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS, weight_kg=Decimal("70.5"))

    consultation = consultation_open(actor=doctor.user, appointment=checked_in)

    consultation.refresh_from_db()
    assert consultation.pulse == 125
    assert consultation.weight_kg == Decimal("70.50")
    assert consultation.vitals_recorded_at == latest.recorded_at
    assert (consultation.news2_total, consultation.news2_band) == (11, news2.HIGH)
    assert events_of("consultation.opened")[0].data["vitals_from_triage"] is True


def test_it_opens_a_consultation_without_triage_as_before(doctor, checked_in):
    consultation = consultation_open(actor=doctor.user, appointment=checked_in)

    assert consultation.pulse is None
    assert consultation.vitals_recorded_at is None


# Refusals


def test_it_refuses_reception_only_staff_admins_and_patients(staff_user, admin_user, patient, checked_in):
    for actor in (staff_user, admin_user, patient.user):
        with pytest.raises(PermissionDenied):
            triage_record(actor=actor, appointment=checked_in, **CALM_VITALS)
    assert not TriageObservation.objects.exists()


def test_it_refuses_a_nurse_of_another_clinic(org, other_clinic, checked_in):
    north_nurse = UserFactory(role=Role.STAFF, organization=org, is_staff=True)
    membership_add(actor=None, user=north_nurse, clinic=other_clinic, is_nurse=True)

    with pytest.raises(PermissionDenied):
        triage_record(actor=north_nurse, appointment=checked_in, **CALM_VITALS)


def test_it_answers_another_organizations_appointment_as_unknown(
    nurse, other_org_doctor, other_org_department
):
    theirs = checked_in_appointment(
        doctor=other_org_doctor,
        department=other_org_department,
        patient=PatientFactory(organization=other_org_department.clinic.organization),
    )

    with pytest.raises(NotFound):
        triage_record(actor=nurse, appointment=theirs, **CALM_VITALS)


def test_it_refuses_a_patient_who_is_not_waiting(
    nurse, doctor, department, patient, other_patient, checked_in
):
    not_yet = booked_appointment(doctor=doctor, department=department, patient=other_patient)
    with pytest.raises(Conflict) as refused:
        triage_record(actor=nurse, appointment=not_yet, **CALM_VITALS)
    assert refused.value.code == "not_waiting"

    consultation_open(actor=doctor.user, appointment=checked_in)
    with pytest.raises(Conflict):
        triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    assert not TriageObservation.objects.exists()


def test_it_refuses_a_no_show(nurse, doctor, checked_in):
    appointment_mark_no_show(actor=doctor.user, appointment=checked_in)

    with pytest.raises(Conflict):
        triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pulse": 400}, "pulse"),
        ({"spo2": 20}, "spo2"),
        ({"temperature": Decimal("50.0")}, "temperature"),
        ({"systolic_bp": 100, "diastolic_bp": 120}, "diastolic_bp"),
        ({"consciousness": "Z"}, "consciousness"),
        ({"notes": "x"}, "notes"),
    ],
)
def test_it_refuses_bad_values_naming_the_field(nurse, checked_in, changes, field):
    with pytest.raises(ValidationFailed) as refused:
        triage_record(actor=nurse, appointment=checked_in, **changes)

    assert field in refused.value.fields
    assert not TriageObservation.objects.exists()


# The nurse capability


def test_an_admin_grants_and_takes_away_the_nurse_capability(admin_user, staff_user, clinic, checked_in):
    membership = Membership.objects.get(user=staff_user, clinic=clinic)

    membership_set_nurse(actor=admin_user, membership=membership, is_nurse=True)
    triage_record(actor=staff_user, appointment=checked_in, **CALM_VITALS)
    membership_set_nurse(actor=admin_user, membership=membership, is_nurse=False)

    with pytest.raises(PermissionDenied):
        triage_record(actor=staff_user, appointment=checked_in, **CALM_VITALS)
    actions = [event.action for event in AuditEvent.objects.filter(action__startswith="membership.nurse")]
    assert sorted(actions) == ["membership.nurse_granted", "membership.nurse_revoked"]


def test_only_staff_members_are_nurses(admin_user, doctor, clinic):
    membership = Membership.objects.get(user=doctor.user, clinic=clinic)

    with pytest.raises(ValidationFailed) as refused:
        membership_set_nurse(actor=admin_user, membership=membership, is_nurse=True)

    assert "is_nurse" in refused.value.fields
    assert not Membership.objects.get(pk=membership.pk).is_nurse


def test_another_organizations_admin_cannot_grant_it(other_org_user, staff_user, clinic):
    membership = Membership.objects.get(user=staff_user, clinic=clinic)

    with pytest.raises(NotFound):
        membership_set_nurse(actor=other_org_user, membership=membership, is_nurse=True)


# The re-score reminder


def test_it_reminds_the_clinic_once_when_observations_are_due(nurse, clinic, checked_in, alerts, committed):
    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)  # routine: due after 120 min
    now = timezone.now()

    with committed():
        assert triage_rescore_reminders(now=now + dt.timedelta(minutes=119)) == 0
        assert triage_rescore_reminders(now=now + dt.timedelta(minutes=121)) == 1
        assert triage_rescore_reminders(now=now + dt.timedelta(minutes=180)) == 0  # already reminded

    [alert] = alerts
    assert alert["clinic_id"] == clinic.pk
    assert alert["doctor_id"] is None
    assert alert["alert"]["kind"] == "rescore_due"


def test_it_uses_the_shorter_interval_of_a_higher_response(nurse, checked_in, settings):
    settings.OPD_NEWS2_RESCORE_MINUTES = {**settings.OPD_NEWS2_RESCORE_MINUTES, "emergency": 10}
    triage_record(actor=nurse, appointment=checked_in, **HIGH_VITALS)

    assert triage_rescore_reminders(now=timezone.now() + dt.timedelta(minutes=11)) == 1


def test_a_new_set_of_vitals_starts_the_clock_again(nurse, checked_in):
    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=100), tick=True):
        triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)

    assert triage_rescore_reminders(now=timezone.now() + dt.timedelta(minutes=130)) == 0
    assert triage_rescore_reminders(now=timezone.now() + dt.timedelta(minutes=225)) == 1


def test_it_does_not_remind_for_a_patient_already_called(nurse, doctor, checked_in):
    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    queue_call_next(actor=doctor.user, doctor=doctor)

    assert triage_rescore_reminders(now=timezone.now() + dt.timedelta(hours=3)) == 0


def test_the_beat_task_sends_the_reminders(nurse, checked_in):
    from consultations.tasks import news2_rescore_reminders

    triage_record(actor=nurse, appointment=checked_in, **CALM_VITALS)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=3), tick=False):
        assert news2_rescore_reminders() == 1
    assert TriageObservation.objects.get().rescore_reminded_at is not None
