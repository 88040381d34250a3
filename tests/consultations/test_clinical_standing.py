"""Clinical access follows the person's standing, on the very next request (issue 14, item 1).

A doctor whose profile is suspended or still pending is refused with 403 `no_clinical_standing` on every
clinical door: 403 rather than 404 because the records are in their own organization and clinic (404 is
for what a user may never know exists), and the answer tells them why and whom to ask. A deactivated
account is not signed in at all (401, or the sign-in page). A doctor removed from the clinic sees nothing
of it (404 on its records, empty lists), like any other clinic's. A doctor who became staff keeps staff
access and loses the doctor's.
"""

from __future__ import annotations

import pytest

from consultations.services import care_note_create, prescription_create, result_create
from opd.core.models import AuditEvent, Membership, Role
from opd.core.services.users import membership_remove, user_change_role, user_create, user_deactivate
from scheduling.models import ApprovalStatus
from scheduling.services import doctor_set_approval
from scheduling.services.doctors import doctor_create
from tests.conftest import assert_error

from .factories import checked_in_appointment, open_consultation
from .test_prescriptions import AMOXICILLIN

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(doctor, department, clinic, patient, other_patient, staff_user):
    """A bit of everything the doctor can reach today: an open consultation with a prescription and a
    result, a care note, and another patient checked in and waiting."""
    consultation = open_consultation(doctor=doctor, department=department, patient=patient)
    prescription = prescription_create(actor=doctor.user, consultation=consultation, items=[AMOXICILLIN])
    result = result_create(actor=doctor.user, consultation=consultation, test_name="HbA1c", value="6.1")
    note = care_note_create(actor=staff_user, patient=patient, clinic=clinic, category="nutrition", text="Ok")
    waiting = checked_in_appointment(doctor=doctor, department=department, patient=other_patient)
    return {
        "consultation": consultation.pk,
        "appointment": consultation.appointment_id,
        "prescription": prescription.pk,
        "result": result.pk,
        "care_note": note.pk,
        "waiting": waiting.pk,
        "patient": patient.pk,
        "doctor": doctor.pk,
        "clinic": clinic.pk,
    }


# Every clinical API door a doctor uses: (method, path, body).
API = [
    ("get", "/api/v1/consultations/", None),
    ("get", "/api/v1/consultations/{consultation}/", None),
    ("patch", "/api/v1/consultations/{consultation}/", {"notes": "Still here?"}),
    ("post", "/api/v1/consultations/", {"appointment": "{waiting}"}),
    ("post", "/api/v1/consultations/{consultation}/complete/", {}),
    ("get", "/api/v1/prescriptions/", None),
    ("get", "/api/v1/prescriptions/{prescription}/", None),
    ("post", "/api/v1/prescriptions/", {"consultation": "{consultation}", "items": [AMOXICILLIN]}),
    ("get", "/api/v1/results/", None),
    ("get", "/api/v1/results/{result}/", None),
    ("get", "/api/v1/care-notes/", None),
    ("get", "/api/v1/care-notes/{care_note}/", None),
    (
        "post",
        "/api/v1/care-notes/",
        {"patient": "{patient}", "clinic": "{clinic}", "category": "other", "text": "x"},
    ),
    ("get", "/api/v1/patients/{patient}/history/", None),
    ("get", "/api/v1/patients/", None),
    ("get", "/api/v1/patients/{patient}/", None),
    ("get", "/api/v1/doctors/{doctor}/queue/", None),
    ("post", "/api/v1/doctors/{doctor}/queue/call-next/", {}),
    ("post", "/api/v1/appointments/{waiting}/start/", {}),
    ("post", "/api/v1/appointments/{appointment}/complete/", {}),
    ("post", "/api/v1/appointments/{waiting}/no-show/", {}),
]
# The doctor's pages: the dashboard, their queue and its fragments, the consultation panel, the print.
PAGES = [
    ("get", "/queue/dashboard/"),
    ("get", "/queue/doctors/{doctor}/board/"),
    ("get", "/queue/doctors/{doctor}/current/"),
    ("post", "/queue/doctors/{doctor}/call-next/"),
    ("post", "/queue/appointments/{waiting}/start/"),
    ("get", "/consultations/appointments/{appointment}/panel/"),
    ("post", "/consultations/appointments/{appointment}/panel/save/"),
    ("post", "/consultations/appointments/{waiting}/panel/open/"),
    ("get", "/consultations/prescriptions/{prescription}/print/"),
]
DOCTOR_ONLY_API = [
    door
    for door in API
    if not door[1].startswith(("/api/v1/care-notes/", "/api/v1/patients/", "/api/v1/doctors/"))
    and "no-show" not in door[1]
]


def fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def call(client, method, path, body, ids):
    path = fill(path, ids)
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, fill(body, ids), format="json")


def _id(door):
    return f"{door[0].upper()} {door[1]}"


def test_the_doctor_in_good_standing_reaches_every_door(api_as, doctor, record):
    client = api_as(doctor.user)
    for method, path, body in API:
        if method == "get":
            response = call(client, method, path, body, record)
            assert response.status_code == 200, (path, response.content)


@pytest.mark.parametrize("door", API, ids=_id)
@pytest.mark.parametrize("status", [ApprovalStatus.SUSPENDED, ApprovalStatus.PENDING])
def test_it_refuses_a_suspended_or_unapproved_doctor_on_every_clinical_endpoint(
    api_as, admin_user, doctor, record, door, status
):
    client = api_as(doctor.user)
    assert call(client, "get", "/api/v1/consultations/{consultation}/", None, record).status_code == 200

    doctor_set_approval(actor=admin_user, doctor=doctor, status=status)

    assert_error(call(client, *door, record), 403, "no_clinical_standing")


@pytest.mark.parametrize("door", PAGES, ids=lambda door: f"{door[0].upper()} {door[1]}")
def test_it_refuses_a_suspended_doctor_on_every_clinical_page(client, admin_user, doctor, record, door):
    client.force_login(doctor.user)
    assert client.get(fill("/consultations/appointments/{appointment}/panel/", record)).status_code == 200

    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)

    method, path = door
    response = getattr(client, method)(fill(path, record))
    assert response.status_code == 403
    assert b"Lovelace" not in response.content  # no patient data on the refusal


def test_the_refusal_ends_when_the_admin_approves_again(api_as, admin_user, doctor, record):
    client = api_as(doctor.user)
    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.SUSPENDED)
    assert_error(client.get("/api/v1/consultations/"), 403, "no_clinical_standing")

    doctor_set_approval(actor=admin_user, doctor=doctor, status=ApprovalStatus.APPROVED)

    assert client.get("/api/v1/consultations/").json()["count"] == 1


@pytest.mark.parametrize("door", API, ids=_id)
def test_it_refuses_a_deactivated_doctor_on_every_clinical_endpoint(api_as, admin_user, doctor, record, door):
    client = api_as(doctor.user)

    user_deactivate(actor=admin_user, user=doctor.user)

    assert call(client, *door, record).status_code == 401


@pytest.mark.parametrize("door", PAGES, ids=lambda door: f"{door[0].upper()} {door[1]}")
def test_it_signs_a_deactivated_doctor_out_of_every_clinical_page(client, admin_user, doctor, record, door):
    client.force_login(doctor.user)

    user_deactivate(actor=admin_user, user=doctor.user)

    method, path = door
    response = getattr(client, method)(fill(path, record))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("door", API, ids=_id)
def test_a_doctor_removed_from_the_clinic_sees_nothing_of_it(
    api_as, admin_user, doctor, clinic, record, door
):
    client = api_as(doctor.user)

    membership_remove(actor=admin_user, membership=Membership.objects.get(user=doctor.user, clinic=clinic))

    response = call(client, *door, record)
    if door[0] == "get" and "{" not in door[1]:
        assert response.status_code == 200
        assert response.json()["results"] == []
    else:
        # Another clinic's record is not there for them; a write naming it is refused, never done.
        assert response.status_code in (403, 404), (door, response.content)


def test_the_removed_doctor_writes_nothing(api_as, admin_user, doctor, clinic, record):
    client = api_as(doctor.user)
    membership_remove(actor=admin_user, membership=Membership.objects.get(user=doctor.user, clinic=clinic))

    assert_error(client.post(fill("/api/v1/appointments/{waiting}/start/", record)), 404)
    assert_error(client.post(fill("/api/v1/doctors/{doctor}/queue/call-next/", record)), 404)


@pytest.mark.parametrize("door", DOCTOR_ONLY_API, ids=_id)
def test_it_refuses_a_doctor_whose_role_changed_to_staff(api_as, admin_user, doctor, record, door):
    client = api_as(doctor.user)

    user_change_role(actor=admin_user, user=doctor.user, role=Role.STAFF)

    assert_error(call(client, *door, record), 403)


def test_a_new_doctor_account_reads_nothing_until_approved(api_as, admin_user, org, department, record):
    user = user_create(actor=admin_user, username="dr-new", password=None, role=Role.DOCTOR, organization=org)
    Membership.objects.create(user=user, clinic=department.clinic)
    client = api_as(user)

    # A doctor's account with no profile yet, then a pending profile: no clinical access either way.
    assert_error(client.get("/api/v1/consultations/"), 403, "no_clinical_standing")
    assert_error(client.get(fill("/api/v1/patients/{patient}/history/", record)), 403, "no_clinical_standing")
    profile = doctor_create(
        actor=admin_user,
        user=user,
        organization=org,
        specialization="GP",
        license_number="NEW-1",
        departments=[department],
    )
    assert profile.approval_status == ApprovalStatus.PENDING
    assert_error(client.get("/api/v1/patients/"), 403, "no_clinical_standing")

    doctor_set_approval(actor=admin_user, doctor=profile, status=ApprovalStatus.APPROVED)

    # Approved, but no appointment with the patient yet: the record opens with a stated reason.
    history = fill("/api/v1/patients/{patient}/history/", record)
    assert_error(client.get(history), 403, "reason_required")
    assert client.get(history, {"reason": "Taking over this patient's care"}).status_code == 200
    assert client.get("/api/v1/consultations/").json()["count"] == 1
    # Each step is on the audit trail, by the admin who took it.
    actions = list(
        AuditEvent.objects.filter(actor=admin_user).order_by("pk").values_list("action", flat=True)
    )
    assert [a for a in actions if a in ("user.created", "doctor.created", "doctor.approved")] == [
        "user.created",
        "doctor.created",
        "doctor.approved",
    ]


def test_promoting_someone_to_doctor_is_audited_and_gives_no_clinical_access(
    api_as, admin_user, staff_user, record
):
    user_change_role(actor=admin_user, user=staff_user, role=Role.DOCTOR, is_staff=False)

    assert AuditEvent.objects.filter(
        action="user.role_changed", actor=admin_user, data__new_role=Role.DOCTOR
    ).exists()
    assert_error(api_as(staff_user).get("/api/v1/consultations/"), 403, "no_clinical_standing")
    assert_error(api_as(staff_user).get("/api/v1/care-notes/"), 403, "no_clinical_standing")
