import threading
import time

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from opd.core.api.views import SchemaView

pytestmark = pytest.mark.django_db


def test_it_publishes_an_openapi_3_schema_of_the_v1_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/auth/token/" in schema["paths"]


def test_swagger_ui_loads_its_assets_from_our_own_server(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


@pytest.fixture
def schema(client):
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_it_declares_the_times_an_appointment_has_not_reached_yet_nullable(schema):
    appointment = schema["components"]["schemas"]["Appointment"]["properties"]

    for name in ("checked_in_at", "started_at", "completed_at", "cancelled_at", "no_show_at"):
        assert appointment[name].get("nullable") is True, name
    assert not appointment["start"].get("nullable")


def test_it_declares_nullable_columns_nullable_wherever_a_serializer_names_them(schema):
    schemas = schema["components"]["schemas"]

    assert schemas["Notification"]["properties"]["sent_at"].get("nullable") is True
    assert schemas["Vitals"]["properties"]["bmi"].get("nullable") is True
    assert schemas["Result"]["properties"]["attachment"].get("nullable") is True


def test_it_documents_a_page_past_the_end_on_every_paginated_list(schema):
    paginated = [
        (path, operation)
        for path, method, operation in _operations(schema)
        if any(p["name"] == "page" for p in operation.get("parameters", []))
    ]

    assert len(paginated) > 10
    for path, operation in paginated:
        assert "404" in operation["responses"], path


def test_it_types_every_path_id_as_an_integer(schema):
    for path, method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["type"] == "integer", (method, path, parameter["name"])


# Errors that carry more than the one shape: the same {"error": {"code", "message", "fields"}}, plus
# what the client needs to act on them.
EXTENDED_ERRORS = {("post", "/api/v1/patients/", "409"): "PossibleDuplicate"}


def test_it_documents_every_error_answer_in_the_one_error_shape(schema):
    components = schema["components"]["schemas"]
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        if path != "/api/v1/auth/token/":
            assert "401" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                body = response["content"]["application/json"]["schema"]
                name = EXTENDED_ERRORS.get((method, path, status), "Error")
                assert body == {"$ref": f"#/components/schemas/{name}"}, (method, path, status)
    for name in EXTENDED_ERRORS.values():
        detail = components[components[name]["properties"]["error"]["$ref"].split("/")[-1]]
        assert (
            {"code", "message", "fields"}
            <= set(detail["properties"])
            <= set(detail["required"]) | {"candidates"}
        )


def test_it_documents_bad_bodies_and_media_types_where_there_is_a_body(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" in operation:
            assert {"400", "415"} <= set(operation["responses"]), (method, path)


def test_it_documents_the_conflicts_of_booking_and_the_queue(schema):
    paths = schema["paths"]

    assert "409" in paths["/api/v1/appointments/"]["post"]["responses"]
    assert "422" in paths["/api/v1/appointments/"]["post"]["responses"]
    assert "409" in paths["/api/v1/doctors/{id}/queue/call-next/"]["post"]["responses"]


def test_it_writes_local_times_of_day_without_an_offset(schema):
    start_time = schema["components"]["schemas"]["AvailabilityRule"]["properties"]["start_time"]

    assert "format" not in start_time
    assert start_time["pattern"].startswith("^")


@pytest.mark.django_db(transaction=True)
def test_clients_asking_for_the_schema_at_once_get_one_build_and_no_server_error(monkeypatch):
    """drf-spectacular's first build is not thread-safe; the view builds once under a lock, then serves it."""
    monkeypatch.setattr(SchemaView, "_built", {})
    real_build = SchemaGenerator.get_schema
    builds = []

    def slow_build(self, *args, **kwargs):
        builds.append(threading.get_ident())
        time.sleep(0.2)  # a wide window for a second request to arrive while the first builds
        return real_build(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", slow_build)
    start = threading.Barrier(6)
    answers = []

    def ask():
        start.wait()
        response = Client().get("/api/schema/?format=json")
        answers.append((response.status_code, response.content))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [status for status, _ in answers] == [200] * 6
    assert len({body for _, body in answers}) == 1
    assert len(builds) == 1
