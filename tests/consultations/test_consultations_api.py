"""/api/v1/consultations/: opening, editing with vitals and NEWS2, completing, addenda, and who may."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from consultations.models import Consultation, ConsultationStatus
from consultations.services import prescription_create
from opd.core.models import AuditEvent, Role
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_cancel, appointment_mark_no_show, appointment_start
from tests.conftest import BREAK_GLASS, assert_error
from tests.consultations.factories import complete
from tests.factories import PatientFactory, UserFactory

from .factories import CALM_VITALS, booked_appointment, completed_consultation, open_consultation

pytestmark = pytest.mark.django_db

CONSULTATIONS = "/api/v1/consultations/"


def detail(consultation) -> str:
    return f"{CONSULTATIONS}{consultation.pk}/"


def stored(consultation) -> dict:
    """Every column of the row: equal before and after means the request wrote nothing."""
    return model_to_dict(Consultation.objects.get(pk=consultation.pk))


def json_vitals(**overrides) -> dict:
    vitals = {k: (float(v) if isinstance(v, Decimal) else v) for k, v in CALM_VITALS.items()}
    return {**vitals, **overrides}


# Opening ---------------------------------------------------------------------------------------------


def test_it_opens_a_consultation_and_starts_the_appointment(api_as, doctor, checked_in):
    response = api_as(doctor.user).post(CONSULTATIONS, {"appointment": checked_in.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["appointment"] == checked_in.pk
    assert body["patient"]["id"] == checked_in.patient_id
    assert body["doctor"]["id"] == doctor.pk
    assert body["news2"] is None
    assert set(body["news2_missing"]) == {
        "respiratory_rate",
        "spo2",
        "air_or_oxygen",
        "systolic_bp",
        "pulse",
        "consciousness",
        "temperature",
    }
    checked_in.refresh_from_db()
    assert checked_in.status == AppointmentStatus.IN_CONSULTATION
    assert AuditEvent.objects.filter(action="consultation.opened", object_id=str(body["id"])).exists()


def test_it_opens_one_for_an_appointment_already_in_consultation(api_as, doctor, checked_in):
    appointment_start(actor=doctor.user, appointment=checked_in)

    response = api_as(doctor.user).post(CONSULTATIONS, {"appointment": checked_in.pk})

    assert response.status_code == 201, response.content
    checked_in.refresh_from_db()
    assert checked_in.status == AppointmentStatus.IN_CONSULTATION


@pytest.mark.parametrize("state", ["booked", "cancelled", "no_show", "completed"])
def test_it_opens_none_for_an_appointment_that_is_not_checked_in(api_as, doctor, department, patient, state):
    appointment = booked_appointment(doctor=doctor, department=department, patient=patient)
    if state == "cancelled":
        appointment_cancel(actor=None, appointment=appointment, reason="Unwell")
    elif state == "no_show":
        appointment_mark_no_show(actor=None, appointment=appointment)
    elif state == "completed":
        Appointment.objects.filter(pk=appointment.pk).update(status=AppointmentStatus.COMPLETED)

    response = api_as(doctor.user).post(CONSULTATIONS, {"appointment": appointment.pk})

    assert_error(response, 409, "invalid_state", {"appointment"})
    assert not Consultation.objects.exists()
    appointment.refresh_from_db()
    assert appointment.status == state


def test_it_answers_409_to_a_second_consultation_for_the_appointment(api_as, doctor, checked_in):
    client = api_as(doctor.user)
    first = client.post(CONSULTATIONS, {"appointment": checked_in.pk})
    assert first.status_code == 201

    second = client.post(CONSULTATIONS, {"appointment": checked_in.pk})

    error = assert_error(second, 409, "consultation_exists", {"appointment"})
    assert f"#{first.json()['id']}" in error["message"]
    assert Consultation.objects.count() == 1


def test_a_colleague_cannot_open_my_patients_consultation(api_as, colleague, checked_in):
    response = api_as(colleague.user).post(CONSULTATIONS, {"appointment": checked_in.pk})

    assert_error(response, 403, "permission_denied")
    assert not Consultation.objects.exists()
    checked_in.refresh_from_db()
    assert checked_in.status == AppointmentStatus.CHECKED_IN


@pytest.mark.parametrize("role", ["staff_user", "admin_user", "patient"])
def test_only_doctors_open_consultations(request, api_as, checked_in, role):
    user = request.getfixturevalue(role)
    user = getattr(user, "user", user)

    response = api_as(user).post(CONSULTATIONS, {"appointment": checked_in.pk})

    assert_error(response, 403, "permission_denied")
    assert not Consultation.objects.exists()


def test_another_organizations_doctor_gets_404_for_the_appointment(api_as, other_org_doctor, checked_in):
    response = api_as(other_org_doctor.user).post(CONSULTATIONS, {"appointment": checked_in.pk})

    assert_error(response, 404, "not_found", {"appointment"})
    assert not Consultation.objects.exists()


def test_opening_refuses_bad_input_naming_the_field(api_as, doctor):
    client = api_as(doctor.user)
    assert_error(client.post(CONSULTATIONS, {}), 400, "invalid", {"appointment"})
    assert_error(client.post(CONSULTATIONS, {"appointment": "x"}), 400, "invalid", {"appointment"})
    assert_error(
        client.post(CONSULTATIONS, {"appointment": 1, "doctor": 2}), 400, "invalid", {"appointment", "doctor"}
    )


# Vitals ----------------------------------------------------------------------------------------------

# field, (below, lowest), (highest, above)
RANGES = {
    "systolic_bp": ((49, 50), (300, 301)),
    "diastolic_bp": ((19, 20), (200, 201)),
    "pulse": ((19, 20), (300, 301)),
    "respiratory_rate": ((3, 4), (80, 81)),
    "temperature": ((29.9, 30.0), (45.0, 45.1)),
    "spo2": ((49, 50), (100, 101)),
    "weight_kg": ((0.19, 0.2), (500, 500.01)),
    "height_cm": ((19.9, 20), (260, 260.1)),
}
CASES = [
    (field, value, ok)
    for field, ((below, low), (high, above)) in RANGES.items()
    for value, ok in ((below, False), (low, True), (high, True), (above, False))
]


@pytest.mark.parametrize(("field", "value", "accepted"), CASES)
def test_it_checks_each_vital_against_its_plausible_range(
    api_as, doctor, consultation, field, value, accepted
):
    vitals = {field: value}
    if field == "diastolic_bp":
        vitals["systolic_bp"] = 250  # the diastolic must stay below it
    before = stored(consultation)
    audits = AuditEvent.objects.count()

    response = api_as(doctor.user).patch(detail(consultation), {"vitals": vitals})

    if accepted:
        assert response.status_code == 200, response.content
        assert Decimal(str(response.json()["vitals"][field])) == Decimal(str(value))
    else:
        error = assert_error(response, 400, "invalid", {f"vitals.{field}"})
        assert "between" in error["fields"][f"vitals.{field}"][0]
        assert stored(consultation) == before
        assert AuditEvent.objects.count() == audits


def test_it_refuses_a_diastolic_pressure_not_below_the_systolic(api_as, doctor, consultation):
    client = api_as(doctor.user)
    before = stored(consultation)

    response = client.patch(detail(consultation), {"vitals": {"systolic_bp": 120, "diastolic_bp": 120}})

    error = assert_error(response, 400, "invalid", {"vitals.diastolic_bp"})
    assert "below the systolic" in error["fields"]["vitals.diastolic_bp"][0]
    assert stored(consultation) == before

    # Also against the systolic already stored.
    assert client.patch(detail(consultation), {"vitals": {"systolic_bp": 110}}).status_code == 200
    response = client.patch(detail(consultation), {"vitals": {"diastolic_bp": 115}})
    assert_error(response, 400, "invalid", {"vitals.diastolic_bp"})


def test_it_keeps_temperature_to_one_decimal(api_as, doctor, consultation):
    response = api_as(doctor.user).patch(detail(consultation), {"vitals": {"temperature": 37.25}})
    assert_error(response, 400, "invalid", {"vitals.temperature"})


def test_it_refuses_an_unknown_consciousness_level(api_as, doctor, consultation):
    response = api_as(doctor.user).patch(detail(consultation), {"vitals": {"consciousness": "X"}})
    assert_error(response, 400, "invalid", {"vitals.consciousness"})


def test_it_derives_bmi_and_refuses_to_take_it(api_as, doctor, consultation):
    client = api_as(doctor.user)

    response = client.patch(detail(consultation), {"vitals": {"weight_kg": 70, "height_cm": 175}})

    assert response.status_code == 200, response.content
    assert response.json()["vitals"]["bmi"] == 22.9
    response = client.patch(detail(consultation), {"vitals": {"bmi": 30}})
    assert_error(response, 400, "invalid", {"vitals.bmi"})


def test_it_refuses_unknown_fields(api_as, doctor, consultation):
    client = api_as(doctor.user)
    assert_error(client.patch(detail(consultation), {"mood": "good"}), 400, "invalid", {"mood"})
    assert_error(
        client.patch(detail(consultation), {"vitals": {"glucose": 5}}), 400, "invalid", {"vitals.glucose"}
    )
    assert_error(client.patch(detail(consultation), {"status": "completed"}), 400, "invalid", {"status"})


# NEWS2 -----------------------------------------------------------------------------------------------


def test_it_scores_news2_when_all_seven_parameters_are_recorded(api_as, doctor, consultation):
    client = api_as(doctor.user)
    partial = {k: v for k, v in json_vitals().items() if k != "temperature"}

    response = client.patch(detail(consultation), {"vitals": partial})
    assert response.json()["news2"] is None
    assert response.json()["news2_missing"] == ["temperature"]

    response = client.patch(detail(consultation), {"vitals": {"temperature": 38.5, "respiratory_rate": 22}})

    body = response.json()
    assert body["news2"] == {
        "total": 3,
        "band": "low",
        "band_label": "Low",
        "spo2_scale": 1,
        "sub_scores": {
            "respiratory_rate": 2,
            "spo2": 0,
            "air_or_oxygen": 0,
            "systolic_bp": 0,
            "pulse": 0,
            "consciousness": 0,
            "temperature": 1,
        },
        "response": {
            "level": "ward",
            "title": "Ward-based response",
            "action": "A registered nurse assesses the patient and decides whether to observe more often or "
            "escalate care.",
            "monitoring": "Observations at least every 4 to 6 hours.",
        },
    }
    assert body["news2_missing"] == []
    assert body["vitals"]["recorded_at"]
    row = Consultation.objects.get(pk=consultation.pk)
    assert (row.news2_total, row.news2_band, row.news2_respiratory_rate) == (3, "low", 2)


def test_clearing_a_vital_clears_the_score(api_as, doctor, consultation):
    client = api_as(doctor.user)
    client.patch(detail(consultation), {"vitals": json_vitals()})

    response = client.patch(detail(consultation), {"vitals": {"pulse": None}})

    assert response.json()["news2"] is None
    assert response.json()["news2_missing"] == ["pulse"]
    row = Consultation.objects.get(pk=consultation.pk)
    assert (row.news2_total, row.news2_band, row.news2_pulse) == (None, "", None)


@pytest.mark.parametrize(
    ("vitals", "band", "total"),
    [
        ({"on_supplemental_oxygen": True, "systolic_bp": 90, "diastolic_bp": 60}, "medium", 5),
        ({"respiratory_rate": 25, "spo2": 91, "pulse": 131}, "high", 9),
    ],
)
def test_a_medium_or_high_band_makes_the_appointment_priority(
    api_as, doctor, consultation, vitals, band, total
):
    response = api_as(doctor.user).patch(detail(consultation), {"vitals": json_vitals(**vitals)})

    assert response.json()["news2"]["band"] == band
    appointment = Appointment.objects.get(pk=consultation.appointment_id)
    assert appointment.is_priority
    assert appointment.priority_reason == f"NEWS2 {band} ({total})"


@pytest.mark.parametrize("vitals", [{}, {"respiratory_rate": 8}])
def test_a_low_or_low_medium_band_leaves_the_queue_alone(api_as, doctor, consultation, vitals):
    response = api_as(doctor.user).patch(detail(consultation), {"vitals": json_vitals(**vitals)})

    assert response.json()["news2"]["band"] in ("low", "low_medium")
    assert not Appointment.objects.get(pk=consultation.appointment_id).is_priority


def test_it_uses_spo2_scale_2_for_a_flagged_patient(api_as, doctor, consultation):
    client = api_as(doctor.user)
    client.patch(detail(consultation), {"vitals": json_vitals(spo2=90)})
    assert client.get(detail(consultation)).json()["news2"]["sub_scores"]["spo2"] == 3

    response = client.patch(detail(consultation), {"vitals": {"hypercapnic_respiratory_failure": True}})

    news = response.json()["news2"]
    assert news["spo2_scale"] == 2
    assert news["sub_scores"]["spo2"] == 0
    assert news["total"] == 0


# Notes -----------------------------------------------------------------------------------------------


def test_it_keeps_the_clinical_notes(api_as, doctor, consultation):
    notes = {
        "chief_complaint": "Wheeze for three days",
        "history": "Asthma since childhood.",
        "examination": "Bilateral expiratory wheeze.",
        "assessment": "Acute asthma, moderate",
        "diagnosis_code": "j45.901",
        "plan": "Salbutamol; review in a week.",
        "follow_up_date": "2031-01-15",
    }

    response = api_as(doctor.user).patch(detail(consultation), notes)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["diagnosis_code"] == "J45.901"
    assert {k: body[k] for k in notes if k != "diagnosis_code"} == {
        k: v for k, v in notes.items() if k != "diagnosis_code"
    }


def test_it_refuses_a_follow_up_before_the_consultation(api_as, doctor, consultation):
    before = stored(consultation)
    response = api_as(doctor.user).patch(detail(consultation), {"follow_up_date": "2020-01-01"})
    assert_error(response, 400, "invalid", {"follow_up_date"})
    assert stored(consultation) == before


@pytest.mark.parametrize("code", ["J45", "J45.9", "S52.521A", "C4A.1", "U07.1"])
def test_it_accepts_icd10_shaped_codes(api_as, doctor, consultation, code):
    response = api_as(doctor.user).patch(detail(consultation), {"diagnosis_code": code})
    assert response.status_code == 200, response.content
    assert response.json()["diagnosis_code"] == code


@pytest.mark.parametrize("code", ["J4", "45J", "J45.", "J45.12345", "J45-9", "asthma"])
def test_it_refuses_a_code_not_shaped_like_icd10(api_as, doctor, consultation, code):
    before = stored(consultation)
    response = api_as(doctor.user).patch(detail(consultation), {"diagnosis_code": code})
    assert_error(response, 400, "invalid", {"diagnosis_code"})
    assert stored(consultation) == before


# Who may edit ----------------------------------------------------------------------------------------


def test_only_the_appointments_doctor_edits_the_draft(api_as, colleague, consultation):
    before = stored(consultation)
    response = api_as(colleague.user).patch(detail(consultation), {"plan": "Mine now"})
    assert_error(response, 403, "permission_denied")
    assert stored(consultation) == before


def test_a_doctor_at_another_clinic_or_organization_gets_404(
    api_as, other_clinic_doctor, other_org_doctor, consultation
):
    for user in (other_clinic_doctor.user, other_org_doctor.user):
        client = api_as(user)
        assert_error(client.get(detail(consultation)), 404, "not_found")
        assert_error(client.patch(detail(consultation), {"plan": "x"}), 404, "not_found")
        assert_error(client.post(f"{detail(consultation)}complete/"), 404, "not_found")


@pytest.mark.parametrize("role", ["staff_user", "admin_user"])
def test_staff_and_admins_do_not_see_clinical_notes(request, api_as, consultation, role):
    client = api_as(request.getfixturevalue(role))
    assert_error(client.get(CONSULTATIONS), 403, "permission_denied")
    assert_error(client.get(detail(consultation)), 403, "permission_denied")
    assert_error(client.patch(detail(consultation), {"plan": "x"}), 403, "permission_denied")


def test_a_colleague_at_the_clinic_reads_the_draft_once_the_patient_is_in_their_care(
    api_as, colleague, consultation
):
    client = api_as(colleague.user)
    # No appointment with the patient: the list keeps to the colleague's own patients.
    assert client.get(CONSULTATIONS).json()["results"] == []
    assert client.get(detail(consultation), {"reason": BREAK_GLASS}).status_code == 200
    response = client.get(CONSULTATIONS)
    assert [row["id"] for row in response.json()["results"]] == [consultation.pk]


def test_a_patient_sees_only_their_own_completed_consultations(
    api_as, doctor, department, patient, other_patient
):
    done = completed_consultation(doctor=doctor, department=department, patient=patient)
    consultation = open_consultation(doctor=doctor, department=department, patient=patient)
    others = completed_consultation(doctor=doctor, department=department, patient=other_patient)
    client = api_as(patient.user)

    assert [row["id"] for row in client.get(CONSULTATIONS).json()["results"]] == [done.pk]
    assert client.get(detail(done)).status_code == 200
    assert_error(client.get(detail(consultation)), 404, "not_found")  # own, but a draft
    assert_error(client.get(detail(others)), 404, "not_found")
    assert_error(client.patch(detail(done), {"plan": "x"}), 403, "permission_denied")


def test_it_lists_with_filters(api_as, doctor, department, patient, other_patient, consultation):
    done = completed_consultation(doctor=doctor, department=department, patient=other_patient)
    client = api_as(doctor.user)

    def ids(query: str) -> list[int]:
        response = client.get(f"{CONSULTATIONS}?{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(f"patient={patient.pk}") == [consultation.pk]
    assert ids("status=completed") == [done.pk]
    assert ids(f"appointment={done.appointment_id}") == [done.pk]
    assert_error(client.get(f"{CONSULTATIONS}?status=open"), 400, "invalid", {"status"})


def test_the_list_costs_the_same_queries_for_one_row_or_many(api_as, doctor, department, org):
    client = api_as(doctor.user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(CONSULTATIONS).status_code == 200
        return len(ctx.captured_queries)

    completed_consultation(doctor=doctor, department=department, patient=PatientFactory(organization=org))
    one = queries()
    for _ in range(4):
        completed_consultation(doctor=doctor, department=department, patient=PatientFactory(organization=org))
    assert client.get(CONSULTATIONS).json()["count"] == 5
    assert queries() == one


# Completing ------------------------------------------------------------------------------------------


def test_completing_completes_the_consultation_and_the_appointment(api_as, doctor, consultation):
    prescription_create(
        actor=doctor.user,
        consultation=consultation,
        items=[{"medication": "Salbutamol", "dose": "2 puffs", "frequency": "as needed", "quantity": 1}],
    )

    consultation.refresh_from_db()
    final = {
        "vitals": json_vitals(),
        "assessment": "Asthma, mild flare.",
        "plan": "Inhaler; review in 2 weeks.",
    }

    response = api_as(doctor.user).post(
        f"{detail(consultation)}complete/", {**final, "version": consultation.version}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "completed"
    assert (response.json()["assessment"], response.json()["plan"]) == (final["assessment"], final["plan"])
    assert response.json()["news2"]["total"] == 0
    assert response.json()["completed_at"]
    appointment = Appointment.objects.get(pk=consultation.appointment_id)
    assert appointment.status == AppointmentStatus.COMPLETED
    assert consultation.prescriptions.get().issued_at is not None


def test_if_the_appointment_cannot_complete_neither_does_the_consultation(api_as, doctor, consultation):
    # Someone moved the appointment back behind the service's back: completing it must fail...
    Appointment.objects.filter(pk=consultation.appointment_id).update(status=AppointmentStatus.CHECKED_IN)

    final = {
        "vitals": json_vitals(),
        "assessment": "Asthma, mild flare.",
        "plan": "Inhaler; review in 2 weeks.",
    }

    response = api_as(doctor.user).post(f"{detail(consultation)}complete/", final, format="json")

    # ...and take the consultation's half of the transaction with it, the final values too.
    assert_error(response, 409, "invalid_state")
    row = Consultation.objects.get(pk=consultation.pk)
    assert row.status == ConsultationStatus.DRAFT
    assert row.completed_at is None
    assert (row.plan, row.pulse, row.version) == ("", None, consultation.version)


def test_a_completed_consultation_is_read_only(api_as, doctor, department, patient):
    done = completed_consultation(doctor=doctor, department=department, patient=patient, plan="Rest")
    client = api_as(doctor.user)
    before = stored(done)

    assert_error(client.patch(detail(done), {"plan": "Changed"}), 409, "consultation_completed")
    assert_error(client.patch(detail(done), {"vitals": {"pulse": 80}}), 409, "consultation_completed")
    assert_error(client.post(f"{detail(done)}complete/"), 409, "consultation_completed")
    assert stored(done) == before


def test_only_the_appointments_doctor_completes(api_as, colleague, consultation):
    assert_error(api_as(colleague.user).post(f"{detail(consultation)}complete/"), 403, "permission_denied")
    assert Consultation.objects.get(pk=consultation.pk).status == ConsultationStatus.DRAFT


# Addenda ---------------------------------------------------------------------------------------------


def test_addenda_append_to_a_completed_consultation_without_changing_it(api_as, doctor, department, patient):
    done = completed_consultation(doctor=doctor, department=department, patient=patient, plan="Rest")
    client = api_as(doctor.user)
    before = stored(done)

    first = client.post(f"{detail(done)}addenda/", {"text": "Potassium came back 3.1: started supplements."})
    second = client.post(f"{detail(done)}addenda/", {"text": "Phoned the patient."})

    assert first.status_code == 201, first.content
    assert first.json()["author"] == doctor.user.get_full_name()
    assert first.json()["created_at"]
    body = client.get(detail(done)).json()
    assert [a["text"] for a in body["addenda"]] == [
        "Potassium came back 3.1: started supplements.",
        "Phoned the patient.",
    ]
    assert second.json()["id"] > first.json()["id"]
    assert body["plan"] == "Rest"
    assert stored(done) == before


def test_addenda_are_for_completed_consultations_only(api_as, doctor, consultation):
    response = api_as(doctor.user).post(f"{detail(consultation)}addenda/", {"text": "Too early"})
    assert_error(response, 409, "consultation_draft")


def test_addenda_refuse_empty_text_and_other_doctors(api_as, doctor, colleague, department, patient):
    done = completed_consultation(doctor=doctor, department=department, patient=patient)
    assert_error(api_as(doctor.user).post(f"{detail(done)}addenda/", {"text": ""}), 400, "invalid", {"text"})
    assert_error(
        api_as(colleague.user).post(f"{detail(done)}addenda/", {"text": "x"}), 403, "permission_denied"
    )
    assert not done.addenda.exists()


def test_it_needs_a_signed_in_user(api, consultation):
    assert api.get(CONSULTATIONS).status_code == 401


def test_a_superuser_reads_every_consultation(api_as, consultation):
    root = UserFactory(username="root", role=Role.STAFF, organization=None, is_superuser=True, is_staff=True)
    assert api_as(root).get(detail(consultation)).status_code == 200


def test_service_level_completion_keeps_a_single_row(doctor, consultation):
    complete(consultation, actor=doctor.user)
    assert Consultation.objects.filter(appointment_id=consultation.appointment_id).count() == 1


def test_it_opens_through_the_helper_with_vitals(doctor, department, other_patient):
    consultation = open_consultation(
        doctor=doctor, department=department, patient=other_patient, **CALM_VITALS
    )
    assert (consultation.news2_total, consultation.news2_band) == (0, "low")
