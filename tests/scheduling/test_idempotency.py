"""Idempotency-Key on booking, cancelling and rescheduling: a retry gets the first answer, never a second effect."""

import pytest
from rest_framework.test import APIClient

from opd.core.errors import Conflict
from opd.core.idempotency import fingerprint, run_idempotent
from opd.core.models import IdempotencyRecord
from scheduling.models import Appointment, AppointmentStatus
from scheduling.services import appointment_book, appointment_cancel
from tests.conftest import assert_error
from tests.factories import PatientFactory, SlotFactory
from tests.scheduling.test_api_appointments import database_state
from tests.scheduling.test_booking_concurrency import run_at_once

APPOINTMENTS = "/api/v1/appointments/"


def post(client: APIClient, url: str, body: dict, key: str | None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(url, body, format="json", headers=headers)


@pytest.mark.django_db
class TestBooking:
    def test_it_replays_the_first_answer_without_booking_again(self, api_as, staff_user, patient, slot):
        client = api_as(staff_user)
        body = {"slot": slot.pk, "patient": patient.pk, "reason": "Cough"}

        first = post(client, APPOINTMENTS, body, key="book-ada-1")
        retry = post(client, APPOINTMENTS, body, key="book-ada-1")

        assert first.status_code == retry.status_code == 201
        assert retry.json() == first.json()
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert Appointment.objects.count() == 1
        slot.refresh_from_db()
        assert slot.booked_count == 1

    def test_it_replays_even_when_the_body_lists_its_fields_in_another_order(
        self, api_as, staff_user, patient, slot
    ):
        client = api_as(staff_user)
        first = client.post(
            APPOINTMENTS,
            f'{{"slot": {slot.pk}, "patient": {patient.pk}}}',
            content_type="application/json",
            headers={"Idempotency-Key": "k"},
        )
        retry = client.post(
            APPOINTMENTS,
            f'{{"patient": {patient.pk}, "slot": {slot.pk}}}',
            content_type="application/json",
            headers={"Idempotency-Key": "k"},
        )

        assert retry.status_code == 201
        assert retry.json()["id"] == first.json()["id"]
        assert Appointment.objects.count() == 1

    def test_it_replays_the_booking_after_the_slot_filled_up(
        self, api_as, staff_user, patient, other_patient, slot
    ):
        client = api_as(staff_user)
        body = {"slot": slot.pk, "patient": patient.pk}
        first = post(client, APPOINTMENTS, body, key="k")
        appointment_book(actor=staff_user, patient=other_patient, slot=slot)  # the last seat goes

        retry = post(client, APPOINTMENTS, body, key="k")

        assert retry.status_code == 201
        assert retry.json() == first.json()

    def test_it_refuses_the_same_key_with_a_different_body(
        self, api_as, staff_user, patient, slot, department
    ):
        client = api_as(staff_user)
        post(client, APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key="k")
        other_slot = SlotFactory(department=department)
        before = database_state()

        response = post(client, APPOINTMENTS, {"slot": other_slot.pk, "patient": patient.pk}, key="k")

        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert "different request" in error["message"]
        assert list(error["fields"]) == ["Idempotency-Key"]
        assert database_state() == before

    def test_it_keeps_keys_apart_per_user(self, api_as, staff_user, admin_user, patient, other_patient, slot):
        mine = post(api_as(staff_user), APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key="k")
        theirs = post(
            api_as(admin_user), APPOINTMENTS, {"slot": slot.pk, "patient": other_patient.pk}, key="k"
        )

        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert "Idempotent-Replayed" not in theirs.headers
        assert Appointment.objects.count() == 2

    def test_keys_that_differ_only_in_case_are_different_keys(
        self, api_as, staff_user, patient, other_patient, slot
    ):
        client = api_as(staff_user)

        lower = post(client, APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key="booking-a1")
        upper = post(client, APPOINTMENTS, {"slot": slot.pk, "patient": other_patient.pk}, key="BOOKING-A1")

        assert (lower.status_code, upper.status_code) == (201, 201)
        assert "Idempotent-Replayed" not in upper.headers
        assert upper.json()["id"] != lower.json()["id"]
        assert IdempotencyRecord.objects.filter(user=staff_user).count() == 2

    def test_it_forgets_a_refused_request_so_a_retry_is_decided_afresh(
        self, api_as, staff_user, patient, other_patient, doctor, department
    ):
        slot = SlotFactory(doctor=doctor, department=department, capacity=1)
        taken = appointment_book(actor=staff_user, patient=other_patient, slot=slot)
        client = api_as(staff_user)
        body = {"slot": slot.pk, "patient": patient.pk}

        refused = post(client, APPOINTMENTS, body, key="k")
        assert refused.status_code == 409
        assert not IdempotencyRecord.objects.exists()
        appointment_cancel(actor=staff_user, appointment=taken)
        retry = post(client, APPOINTMENTS, body, key="k")

        assert retry.status_code == 201
        assert "Idempotent-Replayed" not in retry.headers
        assert Appointment.objects.get(status=AppointmentStatus.BOOKED).patient == patient

    def test_it_stores_nothing_for_invalid_input(self, api_as, staff_user, patient):
        response = post(api_as(staff_user), APPOINTMENTS, {"slot": "abc", "patient": patient.pk}, key="k")

        assert response.status_code == 400
        assert not IdempotencyRecord.objects.exists()

    def test_it_books_every_time_without_a_key(self, api_as, staff_user, org, slot):
        client = api_as(staff_user)
        for _ in range(2):
            patient = PatientFactory(organization=org)
            assert (
                post(client, APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key=None).status_code
                == 201
            )

        assert Appointment.objects.count() == 2
        assert not IdempotencyRecord.objects.exists()

    def test_it_accepts_a_key_of_255_characters(self, api_as, staff_user, patient, slot):
        response = post(
            api_as(staff_user), APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key="k" * 255
        )

        assert response.status_code == 201

    @pytest.mark.parametrize("key", ["k" * 256, "", "two words", "caf\u00e9"])
    def test_it_refuses_a_key_that_is_too_long_empty_or_not_plain_ascii(
        self, api_as, staff_user, patient, slot, key
    ):
        before = database_state()

        response = post(api_as(staff_user), APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key=key)

        assert_error(response, 400, fields={"Idempotency-Key"})
        assert database_state() == before


@pytest.mark.django_db
class TestCancelAndReschedule:
    @pytest.fixture
    def appointment(self, staff_user, patient, slot):
        return appointment_book(actor=staff_user, patient=patient, slot=slot)

    def test_it_replays_a_cancellation(self, api_as, patient, appointment):
        client = api_as(patient.user)
        url = f"{APPOINTMENTS}{appointment.pk}/cancel/"

        first = post(client, url, {"reason": "Better"}, key="cancel-1")
        retry = post(client, url, {"reason": "Better"}, key="cancel-1")

        assert first.status_code == retry.status_code == 200
        assert retry.json() == first.json()
        assert retry.headers["Idempotent-Replayed"] == "true"

    def test_it_replays_a_reschedule_instead_of_moving_again(
        self, api_as, staff_user, appointment, doctor, department
    ):
        new_slot = SlotFactory(doctor=doctor, department=department)
        client = api_as(staff_user)
        url = f"{APPOINTMENTS}{appointment.pk}/reschedule/"

        first = post(client, url, {"slot": new_slot.pk}, key="move-1")
        retry = post(client, url, {"slot": new_slot.pk}, key="move-1")

        assert first.status_code == retry.status_code == 200
        assert retry.json() == first.json()
        appointment.refresh_from_db()
        assert appointment.reschedule_count == 1

    def test_it_refuses_a_key_reused_for_another_appointment(
        self, api_as, staff_user, appointment, other_patient, doctor, department
    ):
        second = appointment_book(
            actor=staff_user, patient=other_patient, slot=SlotFactory(doctor=doctor, department=department)
        )
        client = api_as(staff_user)
        post(client, f"{APPOINTMENTS}{appointment.pk}/cancel/", {}, key="k")

        response = post(client, f"{APPOINTMENTS}{second.pk}/cancel/", {}, key="k")

        assert response.status_code == 422
        second.refresh_from_db()
        assert second.status == AppointmentStatus.BOOKED

    def test_it_keeps_keys_apart_per_action(self, api_as, staff_user, patient, slot):
        client = api_as(staff_user)
        booked = post(client, APPOINTMENTS, {"slot": slot.pk, "patient": patient.pk}, key="k")

        cancelled = post(client, f"{APPOINTMENTS}{booked.json()['id']}/cancel/", {}, key="k")

        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"


@pytest.mark.django_db
class TestMechanism:
    def test_it_rolls_the_record_back_with_the_work_that_failed(self, staff_user):
        def refuse():
            raise Conflict("No.")

        with pytest.raises(Conflict):
            run_idempotent(user=staff_user, scope="test", key="k", digest="d", perform=refuse)

        assert not IdempotencyRecord.objects.exists()

    def test_it_runs_the_work_once_and_returns_the_stored_answer_after(self, staff_user):
        calls = []

        def work():
            calls.append(1)
            return 201, {"n": len(calls)}

        first = run_idempotent(user=staff_user, scope="test", key="k", digest="d", perform=work)
        second = run_idempotent(user=staff_user, scope="test", key="k", digest="d", perform=work)

        assert (first.body, first.replayed) == ({"n": 1}, False)
        assert (second.status, second.body, second.replayed) == (201, {"n": 1}, True)
        assert len(calls) == 1

    def test_its_fingerprint_ignores_key_order_but_not_values(self):
        assert fingerprint("POST", {"a": 1, "b": 2}) == fingerprint("POST", {"b": 2, "a": 1})
        assert fingerprint("POST", {"a": 1}) != fingerprint("POST", {"a": "1"})


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    """Real threads on MariaDB, each with its own connection, all sending the same key at once."""

    def test_ten_simultaneous_retries_make_one_appointment_and_all_see_it(
        self, api_as, staff_user, patient, slot
    ):
        clients = [api_as(staff_user) for _ in range(10)]
        body = {"slot": slot.pk, "patient": patient.pk, "reason": "Cough"}

        responses = run_at_once(10, lambda i: post(clients[i], APPOINTMENTS, body, key="same-key"))

        assert [getattr(r, "status_code", r) for r in responses] == [201] * 10
        assert {r.json()["id"] for r in responses} == {Appointment.objects.get().pk}
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
        slot.refresh_from_db()
        assert slot.booked_count == 1
        assert IdempotencyRecord.objects.count() == 1

    def test_ten_simultaneous_retries_at_a_full_slot_are_all_refused_and_leave_nothing(
        self, api_as, staff_user, patient, other_patient, doctor, department
    ):
        # Each waiter takes over the key when the one before it rolls back; InnoDB may pick deadlock
        # victims among them, which are retried from the top.
        slot = SlotFactory(doctor=doctor, department=department, capacity=1)
        appointment_book(actor=staff_user, patient=other_patient, slot=slot)
        clients = [api_as(staff_user) for _ in range(10)]
        body = {"slot": slot.pk, "patient": patient.pk}

        responses = run_at_once(10, lambda i: post(clients[i], APPOINTMENTS, body, key="same-key"))

        assert [getattr(r, "status_code", r) for r in responses] == [409] * 10
        # "busy" only if one thread lost every retry: still a refusal that wrote nothing.
        assert {r.json()["error"]["code"] for r in responses} <= {"slot_full", "busy"}
        assert Appointment.objects.count() == 1
        assert not IdempotencyRecord.objects.exists()
        slot.refresh_from_db()
        assert slot.booked_count == 1
