"""Consultations, prescriptions, results, care notes and the patient's history under /api/v1/.

Who may call (tenancy is each view's scoped queryset: another organization's ids are 404):
* consultations, prescriptions, results: read by doctors (records of their clinics) and patients (their
  own, completed consultations only); written by doctors, and only for appointments assigned to them.
  Staff and admins are refused (403): they see scheduling data and care notes, not clinical notes.
* care notes: read by admins, staff and doctors at their clinics; written by staff and doctors; edited
  by their author; never deleted. Patients are refused.
* /patients/{id}/history/: doctors and the patient themself; staff and admins are refused.
* /appointments/{id}/triage/: nurses (staff with the nurse capability at the appointment's clinic) and
  the clinic's doctors read and record triage vitals; reception-only staff, admins and patients 403.

Break the glass (consultations.access): a doctor opening a record of a patient outside their care
relationship is refused with 403 `reason_required` (field `reason`) until they send a reason (`?reason=`
or the X-Access-Reason header); lists keep to the patients in the doctor's care. Every read is logged
(ClinicalReadLogMixin): a list, one access row per record on the page, in one INSERT.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.permissions import has_role
from opd.core.api.schema import error_responses
from opd.core.db_router import read_on_replica
from opd.core.errors import NotFound, PermissionDenied, ValidationFailed
from opd.core.models import Role
from opd.core.tenancy import check_clinical_standing, nurse_clinic_ids_for, signed_in_user
from patients.models import Patient
from scheduling.models import Appointment
from scheduling.selectors import appointments_for

from ..access import DOWNLOADED, VIEWED, log_reads
from ..filters import CareNoteFilter, ConsultationFilter, PrescriptionFilter, ResultFilter
from ..models import VITAL_FIELDS, CareNote, Consultation, Prescription, Result, TriageObservation
from ..selectors import (
    HistoryEntry,
    care_note_details,
    care_notes_for,
    consultation_details,
    consultations_for,
    history_entries,
    may_read_care_notes,
    may_read_clinical_records,
    patient_history,
    prescription_details,
    prescriptions_for,
    result_details,
    results_for,
)
from ..services import (
    addendum_create,
    care_note_create,
    care_note_update,
    consultation_complete,
    consultation_open,
    consultation_update,
    prescription_create,
    prescription_delete,
    prescription_update,
    result_create,
    triage_record,
)
from ..services.triage import NOT_A_NURSE, may_triage_at
from .access import REASON_PARAMETERS, ClinicalReadLogMixin, open_patient_record
from .serializers import (
    AddendumCreateSerializer,
    AddendumSerializer,
    CareNoteCreateSerializer,
    CareNoteSerializer,
    CareNoteUpdateSerializer,
    ConsultationCompleteSerializer,
    ConsultationOpenSerializer,
    ConsultationSerializer,
    ConsultationUpdateSerializer,
    HistoryEntrySerializer,
    PrescriptionCreateSerializer,
    PrescriptionSerializer,
    PrescriptionUpdateSerializer,
    ResultCreateSerializer,
    ResultSerializer,
    TriageObservationSerializer,
    TriageRecordSerializer,
)

CLINICAL_READERS_ONLY = "Clinical notes, prescriptions and results are open to doctors and to the patient."
DOCTORS_ONLY = "Only doctors write consultations, prescriptions and results."


class ClinicalRecordAccess(BasePermission):
    """Read: doctors and patients (scoped). Write: doctors."""

    message = CLINICAL_READERS_ONLY

    def has_permission(self, request, view) -> bool:
        check_clinical_standing(request.user)
        if not may_read_clinical_records(request.user):
            self.message = CLINICAL_READERS_ONLY
            return False
        if request.method in SAFE_METHODS:
            return True
        self.message = DOCTORS_ONLY
        return has_role(request.user, Role.DOCTOR)


class CareNoteAccess(BasePermission):
    """Read: admins, staff and doctors (at their clinics). Write: staff and doctors."""

    message = "Care notes are open to clinic staff and doctors."

    def has_permission(self, request, view) -> bool:
        check_clinical_standing(request.user)
        if not may_read_care_notes(request.user):
            return False
        if request.method in SAFE_METHODS:
            return True
        self.message = "Only clinic staff and doctors write care notes."
        return has_role(request.user, Role.STAFF, Role.DOCTOR)


class HistoryAccess(BasePermission):
    message = "A patient's history is open to doctors and to the patient."

    def has_permission(self, request, view) -> bool:
        check_clinical_standing(request.user)
        return may_read_clinical_records(request.user)


MEANINGS = {
    400: "Invalid input; `fields` names each problem. Nothing was written. On a read: the `reason` given "
    "to open a record without a care relationship is too short.",
    403: "The role may not do this, or the record is another doctor's. `reason_required` (field "
    "`reason`): a doctor without a care relationship with the patient must state why (break the glass).",
    404: "Unknown, or not visible to this user (also for ids in the body, named in `fields`).",
    409: "Conflict: the appointment already has a consultation, or the state forbids it "
    "(a completed consultation is read-only). `version_conflict` (field `version`): the consultation "
    "changed since the `version` sent (another tab or person); the message names what changed and the "
    "current version; nothing was written. On prescriptions, `allergy_conflict` (field "
    "`allergy_override_reason`): a medicine matches an active allergy of the patient by name or class; "
    "send the reason for the override.",
}


COMPLETE_MEANINGS = {
    **MEANINGS,
    400: MEANINGS[400] + " `record_incomplete`: the minimum record is missing; `fields` names each part "
    "(`vitals`: no NEWS2 and no `vitals_not_taken_reason`; `assessment`; `plan`).",
}
READ_ERRORS = (400, 401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 409)


def _input(view, serializer_class, request: Request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, context=view.get_serializer_context(), **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _vitals_named(exc: ValidationFailed) -> ValidationFailed:
    """The service names model fields; the API's body has the readings under `vitals`."""
    fields = {f"vitals.{key}" if key in VITAL_FIELDS else key: value for key, value in exc.fields.items()}
    if fields.keys() == exc.fields.keys():
        return exc  # nothing renamed (a refused completion names `vitals`, `assessment`, `plan`)
    first, messages = next(iter(fields.items()))
    return ValidationFailed(f"{first}: {messages[0]}", fields=fields)


@extend_schema_view(
    list=extend_schema(
        summary="List consultations",
        responses={200: ConsultationSerializer, **error_responses(400, 401, 403, descriptions=MEANINGS)},
    ),
    retrieve=extend_schema(
        summary="Show a consultation",
        parameters=REASON_PARAMETERS,
        responses={200: ConsultationSerializer, **error_responses(*READ_ERRORS, descriptions=MEANINGS)},
    ),
)
class ConsultationViewSet(
    ClinicalReadLogMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """A doctor's record of one appointment: notes, vitals with NEWS2, addenda once completed."""

    queryset = Consultation.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = ConsultationSerializer
    filterset_class = ConsultationFilter
    permission_classes = [ClinicalRecordAccess]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Consultation]:
        if getattr(self, "swagger_fake_view", False):
            return Consultation.objects.none()
        return consultation_details(consultations_for(signed_in_user(self.request)))

    def _answer(self, consultation: Consultation, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=consultation.pk)
        return Response(
            ConsultationSerializer(fresh, context=self.get_serializer_context()).data, status=status_code
        )

    @extend_schema(
        summary="Open the consultation of an appointment",
        description="The appointment must be checked in (or already in consultation) and assigned to you; "
        "opening it moves the appointment to in consultation. A second attempt answers 409.",
        request=ConsultationOpenSerializer,
        responses={201: ConsultationSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def create(self, request: Request) -> Response:
        data = _input(self, ConsultationOpenSerializer, request)
        consultation = consultation_open(actor=signed_in_user(request), appointment=data["appointment"])
        return self._answer(consultation, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Edit a draft consultation",
        description="Notes and `vitals` (each reading optional; null clears it). Writing vitals recomputes "
        "NEWS2; a medium or high band marks the appointment as priority in the live queue. A completed "
        "consultation answers 409: add an addendum instead. Send the `version` you read: a write that "
        "changes something moves it on, and a stale one answers 409 `version_conflict`.",
        request=ConsultationUpdateSerializer,
        responses={200: ConsultationSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        consultation = self.get_object()
        data = _input(self, ConsultationUpdateSerializer, request, partial=True)
        expected = data.pop("version", None)
        try:
            consultation = consultation_update(
                actor=signed_in_user(request), consultation=consultation, expected_version=expected, **data
            )
        except ValidationFailed as exc:
            raise _vitals_named(exc) from exc
        return self._answer(consultation)

    @extend_schema(
        summary="Complete a consultation",
        description="Saves the final values sent (optional; as the edit takes them), checks the minimum "
        "record, then completes the consultation and its appointment together and issues its "
        "prescriptions, all in one step: refused, nothing is written. The minimum record: vitals with a "
        "NEWS2 or `vitals_not_taken_reason`; an `assessment` or `diagnosis_code`; a `plan`. Missing "
        "parts answer 400 `record_incomplete` naming each (`vitals`, `assessment`, `plan`). Afterwards "
        "the consultation is read-only. Send the `version` you read (409 `version_conflict` if stale).",
        request=ConsultationCompleteSerializer,
        responses={
            200: ConsultationSerializer,
            **error_responses(*WRITE_ERRORS, descriptions=COMPLETE_MEANINGS),
        },
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        consultation = self.get_object()
        data = _input(self, ConsultationCompleteSerializer, request, partial=True)
        expected = data.pop("version", None)
        try:
            consultation = consultation_complete(
                actor=signed_in_user(request), consultation=consultation, expected_version=expected, **data
            )
        except ValidationFailed as exc:
            raise _vitals_named(exc) from exc
        return self._answer(consultation)

    @extend_schema(
        summary="Add an addendum to a completed consultation",
        description="A correction or later note (author and time recorded); the original never changes.",
        request=AddendumCreateSerializer,
        responses={201: AddendumSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    @action(detail=True, methods=["post"])
    def addenda(self, request: Request, pk: str | None = None) -> Response:
        consultation = self.get_object()
        data = _input(self, AddendumCreateSerializer, request)
        addendum = addendum_create(
            actor=signed_in_user(request), consultation=consultation, text=data["text"]
        )
        return Response(AddendumSerializer(addendum).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="List prescriptions",
        responses={200: PrescriptionSerializer, **error_responses(400, 401, 403, descriptions=MEANINGS)},
    ),
    retrieve=extend_schema(
        summary="Show a prescription",
        parameters=REASON_PARAMETERS,
        responses={200: PrescriptionSerializer, **error_responses(*READ_ERRORS, descriptions=MEANINGS)},
    ),
)
class PrescriptionViewSet(
    ClinicalReadLogMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Medication lines written during a consultation; issued (and read-only) once it is completed."""

    queryset = Prescription.objects.none()
    serializer_class = PrescriptionSerializer
    filterset_class = PrescriptionFilter
    permission_classes = [ClinicalRecordAccess]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Prescription]:
        if getattr(self, "swagger_fake_view", False):
            return Prescription.objects.none()
        return prescription_details(prescriptions_for(signed_in_user(self.request)))

    def _answer(self, prescription: Prescription, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=prescription.pk)
        return Response(
            PrescriptionSerializer(fresh, context=self.get_serializer_context()).data, status=status_code
        )

    @extend_schema(
        summary="Write a prescription",
        description="On a draft consultation of yours; issued when the consultation is completed.",
        request=PrescriptionCreateSerializer,
        responses={201: PrescriptionSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def create(self, request: Request) -> Response:
        data = _input(self, PrescriptionCreateSerializer, request)
        prescription = prescription_create(
            actor=signed_in_user(request),
            consultation=data["consultation"],
            items=data["items"],
            notes=data["notes"],
            allergy_override_reason=data["allergy_override_reason"],
        )
        return self._answer(prescription, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a draft prescription",
        request=PrescriptionUpdateSerializer,
        responses={200: PrescriptionSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        prescription = self.get_object()
        data = _input(self, PrescriptionUpdateSerializer, request, partial=True)
        prescription = prescription_update(
            actor=signed_in_user(request),
            prescription=prescription,
            items=data.get("items"),
            notes=data.get("notes"),
            allergy_override_reason=data.get("allergy_override_reason", ""),
        )
        return self._answer(prescription)

    @extend_schema(
        summary="Withdraw a prescription that was never issued",
        responses={204: None, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        prescription_delete(actor=signed_in_user(request), prescription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List results and records",
        responses={200: ResultSerializer, **error_responses(400, 401, 403, descriptions=MEANINGS)},
    ),
    retrieve=extend_schema(
        summary="Show a result",
        parameters=REASON_PARAMETERS,
        responses={200: ResultSerializer, **error_responses(*READ_ERRORS, descriptions=MEANINGS)},
    ),
)
class ResultViewSet(
    ClinicalReadLogMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Lab and imaging results and other records filed with a consultation. Never edited."""

    read_actions = {"retrieve": VIEWED, "attachment": DOWNLOADED}
    author_field = "recorded_by"

    def author_id(self, obj: Result) -> int | None:
        return obj.recorded_by_id

    queryset = Result.objects.none()
    serializer_class = ResultSerializer
    filterset_class = ResultFilter
    permission_classes = [ClinicalRecordAccess]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[Result]:
        if getattr(self, "swagger_fake_view", False):
            return Result.objects.none()
        return result_details(results_for(signed_in_user(self.request)))

    @extend_schema(
        summary="File a result",
        description="With a consultation of yours (draft or completed). The abnormal flag is computed from "
        "the value and the reference range. Send multipart/form-data to attach a PDF, PNG or JPEG file.",
        request={"application/json": ResultCreateSerializer, "multipart/form-data": ResultCreateSerializer},
        responses={201: ResultSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def create(self, request: Request) -> Response:
        data = dict(_input(self, ResultCreateSerializer, request))
        result = result_create(actor=signed_in_user(request), **data)
        fresh = self.get_queryset().get(pk=result.pk)
        return Response(ResultSerializer(fresh, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        summary="Download a result's attachment",
        parameters=REASON_PARAMETERS,
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            **error_responses(*READ_ERRORS, descriptions=MEANINGS),
        },
    )
    @action(detail=True, methods=["get"])
    def attachment(self, request: Request, pk: str | None = None) -> FileResponse:
        result = self.get_object()
        if not result.attachment:
            raise NotFound("This result has no attachment.")
        response = FileResponse(
            result.attachment.open("rb"),
            as_attachment=True,
            filename=result.attachment_name or "attachment",
            content_type=result.attachment_content_type or "application/octet-stream",
        )
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


@extend_schema_view(
    list=extend_schema(
        summary="List care notes",
        responses={200: CareNoteSerializer, **error_responses(400, 401, 403, descriptions=MEANINGS)},
    ),
    retrieve=extend_schema(
        summary="Show a care note",
        responses={200: CareNoteSerializer, **error_responses(*READ_ERRORS, descriptions=MEANINGS)},
    ),
)
class CareNoteViewSet(
    ClinicalReadLogMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Nurses' and staff's notes about a patient at a clinic: observation, medication, hygiene, ..."""

    break_glass = False  # staff read them at their clinics without an appointment: logged, not asked

    queryset = CareNote.objects.none()
    serializer_class = CareNoteSerializer
    filterset_class = CareNoteFilter
    permission_classes = [CareNoteAccess]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[CareNote]:
        if getattr(self, "swagger_fake_view", False):
            return CareNote.objects.none()
        return care_note_details(care_notes_for(signed_in_user(self.request)))

    def _answer(self, note: CareNote, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=note.pk)
        return Response(
            CareNoteSerializer(fresh, context=self.get_serializer_context()).data, status=status_code
        )

    @extend_schema(
        summary="Write a care note",
        request=CareNoteCreateSerializer,
        responses={201: CareNoteSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def create(self, request: Request) -> Response:
        data = _input(self, CareNoteCreateSerializer, request)
        note = care_note_create(actor=signed_in_user(request), **data)
        return self._answer(note, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Correct a care note (its author only)",
        request=CareNoteUpdateSerializer,
        responses={200: CareNoteSerializer, **error_responses(*WRITE_ERRORS, descriptions=MEANINGS)},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        note = self.get_object()
        data = _input(self, CareNoteUpdateSerializer, request, partial=True)
        note = care_note_update(actor=signed_in_user(request), care_note=note, **data)
        return self._answer(note)


class PatientHistoryView(GenericAPIView):
    """The patient's timeline, newest first: appointments, consultations (with vitals and NEWS2),
    prescriptions, results and (for clinicians) care notes. A fixed number of queries per page."""

    queryset = Patient.objects.none()
    serializer_class = HistoryEntrySerializer
    permission_classes = [HistoryAccess]

    @extend_schema(
        summary="A patient's history",
        description="A doctor without a care relationship with the patient is asked for a reason "
        "(403 `reason_required`), as for each record. Logged: one access row per entry on the page.",
        parameters=REASON_PARAMETERS,
        responses={
            200: HistoryEntrySerializer(many=True),
            **error_responses(*READ_ERRORS, descriptions=MEANINGS),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        user, patient, reason = open_patient_record(request, pk)

        # The access decision above read the primary (a care relationship or break-the-glass that just
        # ended must count at once); the timeline itself, the heavy read, may come from the replica.
        def timeline() -> list[HistoryEntry]:
            page = self.paginate_queryset(patient_history(user, patient))
            return history_entries(user, list(page))  # type: ignore[arg-type]  # the default paginator always pages

        entries = read_on_replica(timeline, user_id=user.pk)
        log_reads(user, VIEWED, [entry.item for entry in entries], reason=reason, via="history")
        return self.get_paginated_response(self.get_serializer(entries, many=True).data)


class TriageAccess(BasePermission):
    """Nurses (staff with the nurse capability at some clinic), doctors in clinical standing, superusers.
    Reception-only staff, admins and patients: 403. Per appointment, the clinic must be one of the
    nurse's (TriageView.appointment)."""

    message = NOT_A_NURSE

    def has_permission(self, request, view) -> bool:
        user = request.user
        check_clinical_standing(user)
        if not user.is_authenticated:
            return False
        if user.is_superuser or user.role == Role.DOCTOR:
            return True
        return user.role == Role.STAFF and bool(nurse_clinic_ids_for(user))


TRIAGE_MEANINGS = {
    400: "Invalid readings; `fields` names each (out of the plausible range, diastolic not below "
    "systolic, unknown field). Nothing was written.",
    403: "Not a nurse at the appointment's clinic nor one of its doctors (reception-only staff, admins "
    "and patients are refused).",
    404: "Unknown appointment, or not visible to this user (another clinic or organization).",
    409: "`not_waiting`: triage vitals are taken while a checked-in patient waits; this appointment is "
    "booked, in consultation, completed, cancelled or a no-show.",
}


class TriageView(GenericAPIView):
    """Triage observations of one appointment: the vitals nurses take while the patient waits, newest
    first, each with its NEWS2 and the clinical response it asks for."""

    queryset = TriageObservation.objects.none()
    serializer_class = TriageObservationSerializer
    permission_classes = [TriageAccess]

    def appointment(self, pk: int) -> Appointment:
        user = signed_in_user(self.request)
        appointment = appointments_for(user).filter(pk=pk).first()
        if appointment is None:
            raise NotFound("No such appointment.")
        if not may_triage_at(user, appointment.clinic_id):
            raise PermissionDenied(NOT_A_NURSE, code="not_a_nurse")
        return appointment

    @extend_schema(
        summary="List an appointment's triage observations",
        description="Newest first. Logged: one access row per observation on the page.",
        responses={
            200: TriageObservationSerializer(many=True),
            **error_responses(*READ_ERRORS, descriptions=TRIAGE_MEANINGS),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        appointment = self.appointment(pk)
        qs = TriageObservation.objects.filter(appointment=appointment).select_related("recorded_by")
        page = self.paginate_queryset(qs.order_by("-recorded_at", "-id"))
        rows = list(page)  # type: ignore[arg-type]  # the default paginator always pages
        log_reads(signed_in_user(request), VIEWED, rows, via="triage")
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)

    @extend_schema(
        summary="Record triage vitals for a waiting patient",
        description="For a checked-in patient who has not been called in. NEWS2 is computed from the "
        "readings; a medium or high band, or a single parameter scoring 3, moves the patient up the queue "
        "at once (audited, live on the doctor's dashboard and the waiting room); a rise to an urgent or "
        "emergency response alerts the doctor's queue socket. The doctor's consultation opens with the "
        "latest set.",
        request=TriageRecordSerializer,
        responses={
            201: TriageObservationSerializer,
            **error_responses(*WRITE_ERRORS, descriptions=TRIAGE_MEANINGS),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        appointment = self.appointment(pk)
        data = _input(self, TriageRecordSerializer, request)
        observation = triage_record(actor=signed_in_user(request), appointment=appointment, **data)
        fresh = TriageObservation.objects.select_related("recorded_by").get(pk=observation.pk)
        return Response(
            TriageObservationSerializer(fresh, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )
