"""The API token check answered from Redis (opd.core.token_cache) ends with the very commit that changes
what it read: every door that ends or narrows access is tried on a token whose check is cached.

Committed transactions (transaction=True): the cache is dropped after a commit, as in production.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from opd.core import token_cache
from opd.core.models import ApiToken, Organization, Role, User
from opd.core.services import (
    organization_update,
    token_revoke,
    token_use,
    tokens_revoke_all,
    user_change_role,
    user_deactivate,
    user_set_password,
    user_update,
)
from opd.core.services.tokens import _cached_rows, _token_from_database
from opd.core.tokens import digest
from tests.conftest import assert_error, token_for

pytestmark = pytest.mark.django_db(transaction=True)

STAFF_ONLY = "/api/v1/analytics/daily/"  # 403 for a patient


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.OPD_API_TOKEN_CACHE_SECONDS = 60
    from django.core.cache import cache

    # Redis outlives each test's database; ids and digests of a flushed database must not meet old entries.
    cache.delete_pattern(f"{token_cache._versions.prefix()}*")
    assert token_cache.enabled()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def token_queries(run) -> int:
    """How many statements read the token table while `run` runs."""
    with CaptureQueriesContext(connection) as queries:
        run()
    return sum(1 for q in queries.captured_queries if "core_apitoken" in q["sql"] and "SELECT" in q["sql"])


def cached(key: str) -> ApiToken:
    """Check the token twice: the second check must come from the cache (no statement at all)."""
    token_use(key=key)
    with CaptureQueriesContext(connection) as queries:
        token = token_use(key=key)
    assert queries.captured_queries == []
    return token


def test_a_second_check_reads_no_database_and_brings_the_same_person(staff_user):
    key = token_for(staff_user)
    token = cached(key)

    assert (token.user.pk, token.user.username, token.user.role, token.user.is_active) == (
        staff_user.pk,
        staff_user.username,
        Role.STAFF,
        True,
    )
    assert token.user.organization.pk == staff_user.organization_id
    assert token.expires_at > timezone.now()
    # The password hash was not kept; asking for it loads it.
    assert "password" not in token.user.__dict__
    assert token.user.check_password("pass-word-123")
    # Through the API as well: a cached request reads no token row.
    client = client_with(key)
    assert client.get(STAFF_ONLY).status_code == 200
    assert token_queries(lambda: client.get(STAFF_ONLY)) == 0


def test_logout_ends_a_cached_token_on_its_next_request(staff_user):
    key = token_for(staff_user)
    client = client_with(key)
    cached(key)
    assert client.post("/api/v1/auth/logout/").status_code in (200, 204)

    assert_error(client.get(STAFF_ONLY), 401, "authentication_failed")


def test_revoking_one_token_and_all_tokens_end_cached_checks(staff_user):
    one, other = token_for(staff_user), token_for(staff_user)
    cached(one)
    cached(other)

    token_revoke(actor=staff_user, token=ApiToken.objects.get(digest=digest(one)))
    assert_error(client_with(one).get(STAFF_ONLY), 401, "authentication_failed")
    assert client_with(other).get(STAFF_ONLY).status_code == 200

    tokens_revoke_all(actor=None, user=staff_user, reason="test")
    assert_error(client_with(other).get(STAFF_ONLY), 401, "authentication_failed")


def test_deactivation_and_a_new_password_end_cached_checks(staff_user, doctor, admin_user):
    staff_key, doctor_key = token_for(staff_user), token_for(doctor.user)
    cached(staff_key)
    cached(doctor_key)

    user_deactivate(actor=admin_user, user=staff_user)
    user_set_password(actor=admin_user, user=doctor.user, password="another-pass-word-456")

    assert_error(client_with(staff_key).get(STAFF_ONLY), 401, "authentication_failed")
    assert_error(client_with(doctor_key).get("/api/v1/appointments/"), 401, "authentication_failed")


def test_a_role_change_is_seen_by_the_next_request(staff_user, admin_user):
    key = token_for(staff_user)
    client = client_with(key)
    assert client.get(STAFF_ONLY).status_code == 200
    cached(key)

    user_change_role(actor=admin_user, user=staff_user, role=Role.PATIENT, is_staff=False)

    assert client.get(STAFF_ONLY).status_code == 403
    assert token_use(key=key).user.role == Role.PATIENT


def test_a_name_change_is_seen_and_a_sign_in_time_drops_nothing(staff_user, admin_user):
    key = token_for(staff_user)
    cached(key)
    user_update(actor=admin_user, user=staff_user, first_name="Renamed")
    assert token_use(key=key).user.first_name == "Renamed"

    # last_login is read by no check: saving it alone keeps the cached check.
    cached(key)
    staff_user.last_login = timezone.now()
    staff_user.save(update_fields=["last_login"])
    assert token_queries(lambda: token_use(key=key)) == 0


def test_an_organization_requiring_a_second_factor_refuses_a_cached_token_without_one(
    staff_user, admin_user, settings
):
    settings.OPD_REQUIRE_SECOND_FACTOR = True
    organization = staff_user.organization
    organization_update(actor=admin_user, organization=organization, require_second_factor=False)
    key = token_for(staff_user)
    client = client_with(key)
    assert client.get(STAFF_ONLY).status_code == 200
    cached(key)

    organization_update(actor=admin_user, organization=organization, require_second_factor=True)

    assert_error(client.get(STAFF_ONLY), 403, "second_factor_required")


def test_a_bulk_update_anywhere_drops_every_cached_check(staff_user):
    key = token_for(staff_user)
    cached(key)

    # No service does this; a data fix in a shell might. The queryset bumps every cached check.
    User.objects.filter(pk=staff_user.pk).update(is_active=False)
    assert_error(client_with(key).get(STAFF_ONLY), 401, "authentication_failed")

    User.objects.filter(pk=staff_user.pk).update(is_active=True)
    cached(key)
    Organization.objects.filter(pk=staff_user.organization_id).update(name="Renamed")
    assert token_use(key=key).user.organization.name == "Renamed"


def test_a_deleted_person_is_refused_at_once(staff_user):
    key = token_for(staff_user)
    cached(key)
    ApiToken.objects.filter(user=staff_user).delete()  # as the person's deletion cascades

    assert_error(client_with(key).get(STAFF_ONLY), 401, "authentication_failed")


def test_a_cached_token_still_expires_on_time(staff_user):
    key = token_for(staff_user)
    token = cached(key)

    with time_machine.travel(token.expires_at + dt.timedelta(seconds=1)):
        assert_error(client_with(key).get(STAFF_ONLY), 401, "authentication_failed")


def test_last_use_is_written_once_a_minute_and_keeps_the_cached_check(staff_user):
    key = token_for(staff_user)
    first = cached(key).last_used_at

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=2)):
        with CaptureQueriesContext(connection) as queries:
            token_use(key=key)
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
        with CaptureQueriesContext(connection) as queries:
            again = token_use(key=key)
        assert queries.captured_queries == []
    assert again.last_used_at > first
    assert ApiToken.objects.get(digest=digest(key)).last_used_at == again.last_used_at


def test_a_check_read_before_a_revocation_is_never_served_after_it(staff_user):
    """The order that makes it safe: versions are read before the database, bumped after the commit. A
    check that read the token while it was live and stores its answer after the revocation committed
    stores it where no later request looks."""
    key = token_for(staff_user)
    token_digest = digest(key)
    found = token_cache.lookup(token_digest)  # a request reads the versions...
    assert found is not None
    assert found[1] is None
    live = _token_from_database(token_digest)  # ...and the live row,
    token_revoke(actor=staff_user, token=ApiToken.objects.get(digest=token_digest))  # a logout commits,
    token_cache.store(found[0], _cached_rows(live), live.expires_at)  # the first request stores late.

    assert_error(client_with(key).get(STAFF_ONLY), 401, "authentication_failed")


def test_off_means_every_check_reads_the_database(staff_user, settings):
    key = token_for(staff_user)
    settings.OPD_API_TOKEN_CACHE_SECONDS = 0
    token_use(key=key)
    assert token_queries(lambda: token_use(key=key)) == 1


def test_each_cached_check_gets_instances_of_its_own_equal_to_the_rows(staff_user):
    """Cached checks decode an entry once per process; requests (threads of one process) must still never
    share a token, person or organization instance: what one request sets on its user is not another's."""
    key = token_for(staff_user)
    one, two = cached(key), cached(key)
    assert one is not two
    assert one.user is not two.user
    assert one.user.organization is not two.user.organization
    one.user.otp_device = "set by the first request"
    one.user.organization.name = "changed on the first request's copy"
    assert not hasattr(two.user, "otp_device")
    assert two.user.organization.name == Organization.objects.get(pk=staff_user.organization_id).name

    live = _token_from_database(digest(key))
    for field in ApiToken._meta.concrete_fields:
        assert getattr(two, field.attname) == getattr(live, field.attname), field.attname
    for field in User._meta.concrete_fields:
        if field.attname != "password":  # not kept in the cache (deferred: read if ever asked)
            assert getattr(two.user, field.attname) == getattr(live.user, field.attname), field.attname
    for field in Organization._meta.concrete_fields:
        assert getattr(two.user.organization, field.attname) == getattr(live.user.organization, field.attname)
    assert not two._state.adding
    assert two.user._state.db == live.user._state.db
