"""Password reset by email through Django's auth views, in the portal's look."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_emails_a_working_link_that_sets_a_new_password(client, patient):
    response = client.post(reverse("password_reset"), {"email": "pat@example.org"})

    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["pat@example.org"]
    assert "\n" not in message.subject
    link = re.search(r"http://testserver(/accounts/reset/\S+)", message.body).group(1)

    form_page = client.get(link)
    assert form_page.status_code == 302  # Django swaps the token for a session and a set-password URL
    done = client.post(
        form_page.url, {"new_password1": "a-brand-new-secret-9", "new_password2": "a-brand-new-secret-9"}
    )

    assert done.url == reverse("password_reset_complete")
    patient.user.refresh_from_db()
    assert patient.user.check_password("a-brand-new-secret-9")


def test_it_says_the_same_for_an_unknown_address_and_sends_nothing(client, patient):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})

    assert response.url == reverse("password_reset_done")
    assert mail.outbox == []


def test_it_refuses_a_weak_new_password_beside_the_field(client, patient):
    client.post(reverse("password_reset"), {"email": "pat@example.org"})
    link = re.search(r"http://testserver(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    set_url = client.get(link).url

    response = client.post(set_url, {"new_password1": "123", "new_password2": "123"})

    assert response.status_code == 200
    assert "new_password2" in response.context["form"].errors
    assert 'id="id_new_password2_error"' in response.content.decode()


def test_its_pages_use_the_portal_look_not_the_admin(client):
    for name in ("password_reset", "password_reset_done", "password_reset_complete"):
        html = client.get(reverse(name)).content.decode()
        assert "css/opd.css" in html, name
        assert "admin/css" not in html, name


def test_it_says_when_a_link_is_no_longer_valid(client, patient):
    response = client.get("/accounts/reset/MQ/set-password/")

    assert "expired" in response.content.decode()
