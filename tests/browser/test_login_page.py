import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]


def test_it_signs_a_user_in_through_the_login_form(live_server, page, login, staff_user, screenshot):
    login(page, staff_user)
    assert page.url.endswith("/admin/")  # staff are sent to their own pages
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("button", name=f"Log out {staff_user.username}")).to_be_visible()
    assert_accessible(page, "login-done")
    screenshot(page, "login-done")


def test_it_says_beside_the_form_when_the_password_is_wrong(live_server, page, staff_user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(staff_user.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    assert "/accounts/login/" in page.url
    assert_accessible(page, "login page, wrong password")
