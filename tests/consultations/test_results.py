"""/api/v1/results/: the abnormal flag from the reference range, attachments through Django's storage."""

from __future__ import annotations

import stat
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from consultations.models import Result
from consultations.services import result_create, result_is_abnormal
from tests.conftest import BREAK_GLASS, assert_error
from tests.consultations.factories import complete

pytestmark = pytest.mark.django_db

RESULTS = "/api/v1/results/"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.mark.parametrize(
    ("value", "low", "high", "abnormal"),
    [
        ("4.0", "3.5", "5.0", False),
        ("3.5", "3.5", "5.0", False),  # the bounds are inside the range
        ("5.0", "3.5", "5.0", False),
        ("3.4", "3.5", "5.0", True),
        ("5.1", "3.5", "5.0", True),
        ("12", None, "10", True),
        ("0.5", "1", None, True),
        ("positive", "1", "2", None),  # not a number: cannot say
        ("4.0", None, None, None),  # no range: cannot say
        ("NaN", "1", "2", None),
    ],
)
def test_it_computes_the_abnormal_flag_from_the_range(value, low, high, abnormal):
    low, high = (Decimal(bound) if bound is not None else None for bound in (low, high))
    assert result_is_abnormal(value, low, high) is abnormal


def test_a_doctor_files_a_lab_result(api_as, doctor, consultation):
    response = api_as(doctor.user).post(
        RESULTS,
        {
            "consultation": consultation.pk,
            "record_type": "lab_report",
            "test_name": "Potassium",
            "value": "5.9",
            "unit": "mmol/L",
            "reference_low": "3.5",
            "reference_high": "5.0",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["is_abnormal"] is True
    assert body["reference_range"] == "3.5-5"
    assert body["attachment"] is None
    assert body["patient"]["id"] == consultation.patient_id
    assert Result.objects.get().is_abnormal is True


def test_it_refuses_a_reversed_range_and_an_unknown_type(api_as, doctor, consultation):
    client = api_as(doctor.user)
    base = {"consultation": consultation.pk, "test_name": "Sodium", "value": "140"}

    response = client.post(RESULTS, {**base, "reference_low": "145", "reference_high": "135"})
    assert_error(response, 400, "invalid", {"reference_high"})
    assert_error(client.post(RESULTS, {**base, "record_type": "x-ray"}), 400, "invalid", {"record_type"})
    assert_error(client.post(RESULTS, {"consultation": consultation.pk}), 400, "invalid", {"test_name"})
    assert not Result.objects.exists()


def test_it_stores_an_attachment_and_serves_it_to_those_who_may_read(
    api_as, doctor, staff_user, patient, consultation, media_root
):
    upload = SimpleUploadedFile("Ada Lovelace chest x-ray.pdf", PDF, content_type="application/pdf")
    response = api_as(doctor.user).post(
        RESULTS,
        {
            "consultation": consultation.pk,
            "record_type": "lab_report",
            "test_name": "Chest X-ray",
            "attachment": upload,
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["attachment_name"] == "Ada Lovelace chest x-ray.pdf"
    assert body["attachment_content_type"] == "application/pdf"
    assert body["attachment_size"] == len(PDF)
    result = Result.objects.get()
    # Stored under MEDIA_ROOT, without the patient's name in the path, encrypted and private (0600, 0700).
    stored = media_root / result.attachment.name
    assert default_storage.exists(result.attachment.name)
    assert stored.read_bytes().startswith(b"OPDENC1")
    assert b"%PDF" not in stored.read_bytes()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert "Lovelace" not in result.attachment.name

    download = api_as(doctor.user).get(body["attachment"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["Content-Type"] == "application/pdf"
    assert "attachment" in download["Content-Disposition"]
    assert_error(api_as(staff_user).get(body["attachment"]), 403, "permission_denied")
    assert_error(api_as(patient.user).get(body["attachment"]), 404, "not_found")  # consultation still a draft
    complete(consultation, actor=doctor.user)
    assert api_as(patient.user).get(body["attachment"]).status_code == 200


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("notes.txt", b"just text", "text/plain"),
        ("fake.pdf", b"MZ\x90\x00 an executable", "application/pdf"),
        ("image.pdf", PNG, "application/pdf"),  # a PNG claiming to be a PDF
    ],
)
def test_it_refuses_attachments_that_are_not_pdf_png_or_jpeg(
    api_as, doctor, consultation, media_root, name, content, content_type
):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    response = api_as(doctor.user).post(
        RESULTS,
        {"consultation": consultation.pk, "test_name": "Scan", "attachment": upload},
        format="multipart",
    )

    assert_error(response, 400, "invalid", {"attachment"})
    assert not Result.objects.exists()
    assert not list(media_root.rglob("*.*"))


def test_it_refuses_an_attachment_over_the_size_limit(api_as, doctor, consultation, settings, media_root):
    settings.OPD_RESULT_ATTACHMENT_MAX_BYTES = 1024
    upload = SimpleUploadedFile("big.png", PNG + b"\x00" * 2000, content_type="image/png")
    response = api_as(doctor.user).post(
        RESULTS,
        {"consultation": consultation.pk, "test_name": "Scan", "attachment": upload},
        format="multipart",
    )

    error = assert_error(response, 400, "invalid", {"attachment"})
    assert error["fields"]["attachment"] == ["The file is larger than 1024 bytes."]
    assert not Result.objects.exists()


def test_results_may_be_filed_after_completion_by_the_consultations_doctor_only(
    api_as, doctor, colleague, other_clinic_doctor, consultation
):
    complete(consultation, actor=doctor.user)
    body = {"consultation": consultation.pk, "test_name": "HbA1c", "value": "48", "unit": "mmol/mol"}

    assert api_as(doctor.user).post(RESULTS, body).status_code == 201
    assert_error(api_as(colleague.user).post(RESULTS, body), 403, "permission_denied")
    assert_error(api_as(other_clinic_doctor.user).post(RESULTS, body), 404, "not_found", {"consultation"})
    assert Result.objects.count() == 1


def test_who_reads_results(
    api_as,
    doctor,
    colleague,
    other_clinic_doctor,
    staff_user,
    admin_user,
    patient,
    other_patient,
    consultation,
):
    result = result_create(
        actor=doctor.user, consultation=consultation, test_name="CRP", value="3", unit="mg/L"
    )
    url = f"{RESULTS}{result.pk}/"

    assert_error(api_as(colleague.user).get(url), 403, "reason_required")
    assert api_as(colleague.user).get(url, {"reason": BREAK_GLASS}).status_code == 200
    assert_error(api_as(other_clinic_doctor.user).get(url), 404, "not_found")
    for user in (staff_user, admin_user):
        assert_error(api_as(user).get(RESULTS), 403, "permission_denied")
    assert_error(api_as(patient.user).get(url), 404, "not_found")
    complete(consultation, actor=doctor.user)
    assert api_as(patient.user).get(url).status_code == 200
    assert_error(api_as(other_patient.user).get(url), 404, "not_found")
    assert_error(api_as(patient.user).post(RESULTS, {}), 403, "permission_denied")


def test_it_filters_by_abnormal(api_as, doctor, consultation):
    high = result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="K",
        value="6",
        reference_low=Decimal(3),
        reference_high=Decimal(5),
    )
    result_create(
        actor=doctor.user,
        consultation=consultation,
        test_name="Na",
        value="140",
        reference_low=Decimal(135),
        reference_high=Decimal(145),
    )
    client = api_as(doctor.user)
    assert [row["id"] for row in client.get(f"{RESULTS}?abnormal=true").json()["results"]] == [high.pk]
    assert_error(client.get(f"{RESULTS}?abnormal=maybe"), 400, "invalid", {"abnormal"})
