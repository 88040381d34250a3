"""Input that once answered 500 now answers 400 or 404 in the error shape, naming what was wrong."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scheduling.models import Appointment
from tests.conftest import assert_error
from tests.factories import SlotFactory

pytestmark = pytest.mark.django_db

EXTREME_DAYS = [("date_from", "0001-01-01"), ("date_to", "9999-12-31"), ("date_from", "9999-12-31")]
ANALYTICS = ["analytics-daily", "analytics-news2-daily", "analytics-care-notes-daily"]


@pytest.mark.parametrize(("field", "day"), EXTREME_DAYS)
def test_care_notes_refuse_a_day_at_the_edge_of_the_calendar(api_as, staff_user, field, day):
    response = api_as(staff_user).get("/api/v1/care-notes/", {field: day})

    assert_error(response, 400, "invalid", field=field)


@pytest.mark.parametrize("name", ANALYTICS)
@pytest.mark.parametrize(("field", "day"), EXTREME_DAYS)
def test_the_analytics_api_refuses_a_day_at_the_edge_of_the_calendar(api_as, admin_user, name, field, day):
    response = api_as(admin_user).get(reverse(name), {field: day})

    assert_error(response, 400, field=field)


@pytest.mark.parametrize(("field", "day"), EXTREME_DAYS)
def test_the_analytics_page_and_csv_refuse_a_day_at_the_edge_of_the_calendar(client, admin_user, field, day):
    client.force_login(admin_user)

    page = client.get(reverse("analytics:dashboard"), {field: day})
    export = client.get(reverse("analytics:export", args=["daily"]), {field: day})

    assert page.status_code == 200  # the page shows the form again, the message beside the field
    assert "Use a day between 1900-01-01 and 2999-12-31." in page.content.decode()
    assert not page.context["tables"]
    assert export.status_code == 400
    assert field in export.content.decode()


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/token/", "/api/v1/appointments/", "/api/v1/patients/", "/api/v1/care-notes/"]
)
def test_deeply_nested_json_is_a_malformed_body(api_as, api, staff_user, path):
    client = api if path.endswith("token/") else api_as(staff_user)

    response = client.post(path, "[" * 5000, content_type="application/json")

    error = assert_error(response, 400, "parse_error")
    assert "Malformed JSON" in error["message"]


def test_a_multipart_booking_with_a_file_and_an_idempotency_key_is_refused_not_a_500(
    api_as, staff_user, patient, doctor, department
):
    slot = SlotFactory(doctor=doctor, department=department, capacity=2)
    client = api_as(staff_user)

    def post(content: bytes | None, key: str):
        body = {"slot": slot.pk, "patient": patient.pk}
        if content is not None:
            body["note"] = SimpleUploadedFile("a.txt", content)
        return client.post("/api/v1/appointments/", body, format="multipart", HTTP_IDEMPOTENCY_KEY=key)

    first = post(b"one", "k-1")
    again = post(b"one", "k-1")
    other_file = post(b"two", "k-1")

    # The file part is fingerprinted (by its digest) and the booking refuses the unknown part.
    assert_error(first, 400, "invalid", fields=["note"])
    assert again.json() == first.json()
    assert other_file.status_code in (400, 422)
    assert not Appointment.objects.exists()
    # A multipart body without a file books as a JSON one would.
    assert post(None, "k-2").status_code == 201


@pytest.mark.parametrize("param", ["patient", "doctor", "slot"])
@pytest.mark.parametrize("value", ["99999999999999999999", str(2**63), "-99999999999999999999"])
def test_an_id_too_large_for_the_database_is_refused_in_a_filter(api_as, staff_user, param, value):
    response = api_as(staff_user).get("/api/v1/appointments/", {param: value})

    assert_error(response, 400, "invalid", field=param)


def test_the_largest_id_the_database_holds_is_simply_not_found(api_as, staff_user):
    response = api_as(staff_user).get("/api/v1/appointments/", {"patient": str(2**63 - 1)})

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("path", ["/api/v1/clinics/%C2%B2/queue/", "/api/v1/appointments/%C2%B2/check-in/"])
def test_a_non_ascii_digit_in_an_api_path_is_not_found(api_as, staff_user, path):
    response = api_as(staff_user).get(path)

    assert_error(response, 404)


def test_a_non_ascii_digit_as_the_portal_clinic_is_ignored(client, patient):
    client.force_login(patient.user)

    response = client.get("/portal/find/", {"clinic": "\u00b2"})
    chosen = client.get("/portal/find/", {"clinic": "\u00b2", "department": "\u00b2"})

    assert response.status_code == 200
    assert chosen.status_code in (200, 400)
    assert "department" in chosen.context["form"].errors
