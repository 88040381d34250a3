"""The live queue over HTTP: check-in, the doctor's actions, and the snapshots the websockets send.

Who may call:
* check-in: admins and staff of the appointment's clinic;
* call-next: the doctor themself (superusers too);
* start, complete: the appointment's doctor (superusers too): they are clinical steps;
* no-show, skip, recall: the appointment's doctor, or admins and staff of its clinic (reception sends a
  patient who is not there behind the next one, or calls them again);
* undo-no-show, undo-skip: the same people, within OPD_UNDO_MINUTES (services.queue has the rules);
* GET /doctors/{id}/queue/: the doctor, and admins and staff of a clinic where the doctor works;
* GET /clinics/{id}/queue/: admins and staff of the clinic (no patient names: the waiting room's view).
Ids the user cannot see answer 404 (another organization's too); a role that may not act, 403; a state
that forbids the action (not checked in, already called, nobody waiting), 409.
"""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opd.core.api.permissions import IsClinicStaff, has_role
from opd.core.api.schema import error_responses
from opd.core.api.serializers import StrictInputMixin
from opd.core.errors import NotFound, PermissionDenied
from opd.core.models import Role
from opd.core.tenancy import signed_in_user
from scheduling.access import log_queue_view

from ..models import Appointment, Doctor
from ..selectors import (
    appointments_for,
    clinic_queue_access,
    clinic_queue_snapshot,
    doctor_queue_access,
    doctor_queue_snapshot,
    queue_entry,
)
from ..services import (
    COMPLETE,
    NO_SHOW,
    START,
    Transition,
    appointment_check_in,
    appointment_recall,
    appointment_skip,
    appointment_transition,
    appointment_undo_no_show,
    appointment_undo_skip,
    queue_call_next,
)

# Documentation of the snapshot shapes (the views answer selectors' dicts as they are, which is exactly
# what the websocket sends; tests compare the two).


class _Brief(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class QueueDoctorSerializer(_Brief):
    room = serializers.CharField(help_text="Consulting room or desk; may be empty.")


class _PatientBrief(_Brief):
    mrn = serializers.CharField()


class _EntryBase(serializers.Serializer):
    appointment_id = serializers.IntegerField()
    token = serializers.IntegerField(allow_null=True, help_text="Issued at check-in; per department and day.")
    token_label = serializers.CharField(allow_null=True, help_text="The department's code and the token.")
    state = serializers.ChoiceField(
        choices=["booked", "waiting", "called", "in_consultation", "completed", "no_show"],
        help_text="waiting: checked in, not called; called: asked to the room, not yet seen.",
    )
    department = _Brief()
    called_at = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField(allow_null=True, help_text="1 = next (waiting patients only).")
    estimated_wait_minutes = serializers.IntegerField(
        allow_null=True,
        help_text="From the doctor's average consultation today (waiting patients only).",
    )


class QueueEntrySerializer(_EntryBase):
    patient = _PatientBrief()
    doctor_id = serializers.IntegerField()
    is_priority = serializers.BooleanField()
    priority_reason = serializers.CharField()
    appointment_start = serializers.DateTimeField()
    checked_in_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    no_show_at = serializers.DateTimeField(allow_null=True)


class PublicQueueEntrySerializer(_EntryBase):
    doctor = QueueDoctorSerializer()


class _Day(serializers.Serializer):
    clinic_id = serializers.IntegerField()
    date = serializers.DateField()
    time_zone = serializers.CharField()


class _Counts(serializers.Serializer):
    expected = serializers.IntegerField()
    waiting = serializers.IntegerField()
    called = serializers.IntegerField()
    in_consultation = serializers.IntegerField()
    completed = serializers.IntegerField()
    no_show = serializers.IntegerField()


class _PublicAlert(serializers.Serializer):
    kind = serializers.CharField(
        help_text='"news2": the latest NEWS2 asks for an urgent or emergency response.'
    )
    appointment_id = serializers.IntegerField()
    token_label = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(help_text="When the vitals were recorded.")
    level = serializers.CharField(help_text='"urgent" or "emergency".')
    title = serializers.CharField()
    action = serializers.CharField(help_text="The clinical response NEWS2 asks for.")
    news2_total = serializers.IntegerField(allow_null=True)
    news2_band = serializers.CharField()
    # A field named like Field.source: DRF's metaclass takes declared fields out of the class, so it does
    # not shadow the attribute at run time; the stubs cannot know that.
    source = serializers.CharField(help_text='"triage" or "consultation".')  # type: ignore[assignment]


class _Alert(_PublicAlert):
    patient = serializers.CharField()


class QueueAlertSerializer(serializers.Serializer):
    appointment_id = serializers.IntegerField()
    alert = _Alert()


class PublicQueueAlertSerializer(serializers.Serializer):
    appointment_id = serializers.IntegerField()
    alert = _PublicAlert()


class DoctorQueueSnapshotSerializer(serializers.Serializer):
    queue = serializers.CharField(help_text='"doctor:<id>"')
    version = serializers.IntegerField(help_text="Changes seen by this queue; each event adds one.")
    generated_at = serializers.DateTimeField()
    doctor = QueueDoctorSerializer()
    days = _Day(many=True, help_text="Today in each clinic where the doctor works.")
    average_consultation_minutes = serializers.FloatField()
    average_sample = serializers.IntegerField(help_text="Consultations the average is from (0: a default).")
    current = QueueEntrySerializer(allow_null=True, help_text="The patient in consultation.")
    in_consultation = QueueEntrySerializer(many=True)
    called = QueueEntrySerializer(many=True)
    waiting = QueueEntrySerializer(many=True, help_text="In queue order.")
    expected = QueueEntrySerializer(many=True, help_text="Booked for today, not checked in.")
    done = QueueEntrySerializer(many=True, help_text="Completed and no-shows, latest first.")
    alerts = QueueAlertSerializer(
        many=True,
        help_text="The alerts that hold now (as the websocket's alert frames), so a page that connects or "
        "resyncs after one was sent still shows it.",
    )
    counts = _Counts()


class _Clinic(_Brief):
    time_zone = serializers.CharField()


class _DoctorLine(serializers.Serializer):
    doctor = QueueDoctorSerializer()
    average_consultation_minutes = serializers.FloatField()
    in_consultation = PublicQueueEntrySerializer(many=True)
    called = PublicQueueEntrySerializer(many=True)
    waiting = PublicQueueEntrySerializer(many=True)


class ClinicQueueSnapshotSerializer(serializers.Serializer):
    queue = serializers.CharField(help_text='"clinic:<id>"')
    version = serializers.IntegerField()
    generated_at = serializers.DateTimeField()
    clinic = _Clinic()
    date = serializers.DateField()
    now_calling = PublicQueueEntrySerializer(many=True, help_text="Called tokens, latest first.")
    doctors = _DoctorLine(many=True)
    alerts = PublicQueueAlertSerializer(many=True, help_text="The alerts that hold now, without names.")


class CallNextSerializer(StrictInputMixin, serializers.Serializer):
    pool = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also take patients waiting for colleagues in the doctor's departments; a patient taken "
        "this way moves to the calling doctor.",
    )


QUEUE_CONFLICT = {
    409: "The appointment's state forbids it (or nobody is waiting, or a patient is already called)."
}


def _entry(appointment: Appointment) -> dict:
    fresh = Appointment.objects.select_related("patient", "department", "doctor__user").get(pk=appointment.pk)
    return queue_entry(fresh)


class IsDoctor(BasePermission):
    message = "Only doctors may do this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.DOCTOR)


class IsDoctorOrClinicStaff(BasePermission):
    message = "Only doctors and clinic staff may do this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.DOCTOR, Role.ADMIN, Role.STAFF)


class _AppointmentAction(APIView):
    """POST /appointments/{id}/<action>/ with an empty body; answers the appointment as the queue shows it.
    Whether a doctor may act on another doctor's patient is the service's to say (check_doctor_owns)."""

    # Each action names its service (a staticmethod), or overrides act() as _TransitionAction does.
    service: Callable[..., Appointment]

    def get_appointment(self, pk: int) -> Appointment:
        appointment = appointments_for(signed_in_user(self.request)).filter(pk=pk).first()
        if appointment is None:
            raise NotFound("No such appointment.")
        return appointment

    def act(self, appointment: Appointment) -> Appointment:
        return type(self).service(actor=signed_in_user(self.request), appointment=appointment)

    def post(self, request: Request, pk: int) -> Response:
        return Response(_entry(self.act(self.get_appointment(pk))))


class _TransitionAction(_AppointmentAction):
    """A step of the appointment's status (services.queue.Transition): start, complete, no-show."""

    transition: Transition

    def act(self, appointment: Appointment) -> Appointment:
        return appointment_transition(
            actor=signed_in_user(self.request), appointment=appointment, transition=self.transition
        )


def _action_schema(summary: str, description: str):
    return extend_schema(
        summary=summary,
        description=description,
        request=None,
        responses={
            200: QueueEntrySerializer,
            **error_responses(401, 403, 404, 409, descriptions=QUEUE_CONFLICT),
        },
    )


class CheckInView(_AppointmentAction):
    permission_classes = [IsClinicStaff]
    service = staticmethod(appointment_check_in)

    @_action_schema(
        "Check a patient in",
        "Issues the next token of the department's day. Allowed from the clinic's check-in window "
        "(`checkin_opens_minutes`) before the appointment until its end. Admins and staff.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class StartView(_TransitionAction):
    permission_classes = [IsDoctor]
    transition = START

    @_action_schema(
        "Start the consultation", "The appointment's doctor. A checked-in patient, called or not."
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class CompleteView(_TransitionAction):
    permission_classes = [IsDoctor]
    transition = COMPLETE

    @_action_schema("Complete the consultation", "The appointment's doctor.")
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class NoShowView(_TransitionAction):
    permission_classes = [IsDoctorOrClinicStaff]
    transition = NO_SHOW

    @_action_schema(
        "Mark as no-show", "A booked or checked-in patient who did not come. The doctor or staff."
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class SkipView(_AppointmentAction):
    permission_classes = [IsDoctorOrClinicStaff]
    service = staticmethod(appointment_skip)

    @_action_schema(
        "Skip a patient",
        "A checked-in patient (usually the one called) goes back behind the next one waiting and is no "
        "longer called. The doctor or staff.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


UNDO_CONFLICT = {
    409: "Code `undo_expired`: the no-show is older than OPD_UNDO_MINUTES (default 5). Code "
    "`undo_not_possible`: it is not a no-show, the token's day is over, the patient was booked or checked "
    "in again since, or it was a booked appointment that has ended (the no-show sweep's)."
}


class UndoNoShowView(_AppointmentAction):
    permission_classes = [IsDoctorOrClinicStaff]
    service = staticmethod(appointment_undo_no_show)

    @extend_schema(
        summary="Undo a no-show",
        description="Within OPD_UNDO_MINUTES (default 5) of the no-show, the appointment goes back to the "
        "state it was marked from: a checked-in patient to their place in the waiting line (no longer "
        "called), a booked one to booked. The doctor or staff of the clinic; audited.",
        request=None,
        responses={
            200: QueueEntrySerializer,
            **error_responses(401, 403, 404, 409, descriptions=UNDO_CONFLICT),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


UNDO_SKIP_CONFLICT = {
    409: "Code `undo_expired`: the skip is older than OPD_UNDO_MINUTES (default 5). Code "
    "`undo_not_possible`: no skip to undo (none, already undone, re-prioritised since), the patient has "
    "been called or seen since, or the token's day is over."
}


class UndoSkipView(_AppointmentAction):
    permission_classes = [IsDoctorOrClinicStaff]
    service = staticmethod(appointment_undo_skip)

    @extend_schema(
        summary="Undo a skip",
        description="Within OPD_UNDO_MINUTES (default 5) of the last skip, the patient gets back the place "
        "in the line they had before it (not called: the doctor calls them). The doctor or staff of the "
        "clinic; audited.",
        request=None,
        responses={
            200: QueueEntrySerializer,
            **error_responses(401, 403, 404, 409, descriptions=UNDO_SKIP_CONFLICT),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class RecallView(_AppointmentAction):
    permission_classes = [IsDoctorOrClinicStaff]
    service = staticmethod(appointment_recall)

    @_action_schema(
        "Call a patient again", "The waiting room announces the called token once more. The doctor or staff."
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class CallNextView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(
        summary="Call the next patient",
        description="The doctor calls the first patient of their waiting line (with `pool`, of their "
        "departments'). Two calls at once never call the same patient; while a patient is called or in "
        "consultation another call answers 409, as does an empty line (code `queue_empty`).",
        request=CallNextSerializer,
        responses={
            200: QueueEntrySerializer,
            **error_responses(400, 401, 403, 404, 409, descriptions=QUEUE_CONFLICT),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        user = signed_in_user(request)
        # The queue's own check: standing, and a membership at one of its clinics.
        doctor = doctor_queue_access(user, pk)
        if doctor.user_id != user.pk and not user.is_superuser:
            raise PermissionDenied("Doctors call their own next patient.")
        data = CallNextSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        called = queue_call_next(actor=user, doctor=doctor, pool=data.validated_data["pool"])
        return Response(_entry(called), status=status.HTTP_200_OK)


class DoctorQueueView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="A doctor's queue today",
        description="The snapshot the websocket `ws/queue/doctor/{id}/` sends on connect. The doctor, and "
        "admins and staff of a clinic where the doctor works.",
        responses={200: DoctorQueueSnapshotSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        user = signed_in_user(request)
        doctor: Doctor = doctor_queue_access(user, pk)
        snapshot = doctor_queue_snapshot(doctor)
        log_queue_view(user, doctor, snapshot=snapshot, via="api")
        return Response(snapshot)


class ClinicQueueView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="A clinic's queue today (the waiting room's view)",
        description="The snapshot the websocket `ws/queue/clinic/{id}/` sends on connect: tokens, rooms "
        "and estimated waits, never patient names. Admins and staff of the clinic.",
        responses={200: ClinicQueueSnapshotSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(clinic_queue_snapshot(clinic_queue_access(signed_in_user(request), pk)))
