"""Authenticated answers are not cached; every page carries the Content-Security-Policy."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.mark.parametrize("url", ["/queue/dashboard/", "/api/v1/clinics/", "/"])
def test_it_forbids_storing_a_signed_in_doctors_answers(doctor, url):
    response = signed_in(doctor.user).get(url)

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)
    assert response["Pragma"] == "no-cache"


@pytest.mark.parametrize("url", ["/portal/appointments/", "/portal/record/"])
def test_it_forbids_storing_a_patients_pages(patient, url):
    response = signed_in(patient.user).get(url)

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)


def test_it_forbids_storing_token_api_answers(api_as, staff_user):
    response = api_as(staff_user).get("/api/v1/clinics/")

    assert response.status_code == 200
    assert "no-store" in cache_directives(response)


def test_it_forbids_storing_an_api_refusal_to_a_bad_token(client):
    response = client.get("/api/v1/clinics/", HTTP_AUTHORIZATION="Token nope")

    assert response.status_code == 401
    assert "no-store" in cache_directives(response)


def test_it_leaves_static_files_and_anonymous_pages_cacheable(doctor):
    client = signed_in(doctor.user)

    static = client.get("/static/css/opd.css")
    assert static.status_code == 200
    assert "no-store" not in cache_directives(static)
    for url in ("/", "/api/docs/"):
        response = Client().get(url)
        assert response.status_code == 200
        assert "no-store" not in cache_directives(response)
        assert "Pragma" not in response


EXPECTED_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        name: value
        for name, _, value in (part.strip().partition(" ") for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/api/docs/", "/api/v1/clinics/", "/healthz"])
def test_it_sends_the_content_security_policy(client, url):
    directives = policy(client.get(url))

    for name, value in EXPECTED_DIRECTIVES.items():
        assert directives[name] == value, name
    assert "unsafe-inline" not in str(directives)
    assert "unsafe-eval" not in str(directives)


def test_it_serves_the_api_docs_without_an_inline_script(client):
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    html = page.content.decode()
    assert html.count("<script") == html.count("<script src=")
    assert "<style" not in html
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_it_allows_a_separate_websocket_origin():
    import subprocess
    import sys

    from django.conf import settings

    code = "from django.conf import settings; print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src'])"
    result = subprocess.run(  # noqa: S603 (our own settings, fixed arguments)
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=settings.BASE_DIR,
        env={**__import__("os").environ, "WEBSOCKET_BASE_URL": "wss://ws.opd.example.org/"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.strip() == "[\"'self'\", 'wss://ws.opd.example.org']"
