import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


def test_it_issues_a_token_that_opens_the_api(staff_user):
    response = APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"})

    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=staff_user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/clinics/").status_code == 200


def test_it_gives_the_same_token_on_a_second_sign_in(staff_user):
    first = APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"})
    second = APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"})

    assert first.json()["token"] == second.json()["token"]
    assert Token.objects.filter(user=staff_user).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"username": "reception", "password": "wrong-password"},
        {"username": "nobody", "password": "pass-word-123"},
        {"username": "reception"},
    ],
)
def test_it_refuses_bad_credentials_without_a_token(staff_user, body):
    response = APIClient().post(TOKEN_URL, body)

    error = assert_error(response, 400, "invalid")
    assert "token" not in response.json()
    assert error["fields"]
    assert not Token.objects.exists()


def test_it_refuses_an_inactive_user(staff_user):
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    response = APIClient().post(TOKEN_URL, {"username": "reception", "password": "pass-word-123"})

    assert response.status_code == 400
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    "url", ["/api/v1/organizations/", "/api/v1/clinics/", "/api/v1/patients/", "/api/v1/doctors/"]
)
def test_it_answers_401_without_credentials(url):
    response = APIClient().get(url)

    assert_error(response, 401, "not_authenticated")


def test_it_answers_401_for_an_unknown_token(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = client.get("/api/v1/patients/")

    assert_error(response, 401, "authentication_failed")
