"""Doctors, their approval, and their weekly availability rules and exceptions.

Reading doctors: anyone signed in, within doctors_for (patients see their organization's approved
doctors so they can book). Approval: admins. A doctor's schedule: read by clinicians who can see the
doctor; written by the doctor themself or by admins and staff of a clinic where the doctor works.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from opd.core.api.permissions import IsAdmin, IsClinician
from opd.core.api.serializers import ScopedPrimaryKeyField, StrictInputMixin
from opd.core.models import Department
from opd.core.tenancy import departments_for, signed_in_user

from ..filters import DoctorFilter
from ..models import ApprovalStatus, AvailabilityException, AvailabilityRule, Doctor
from ..selectors import doctors_for
from ..services import (
    availability_exception_create,
    availability_exception_delete,
    availability_rule_create,
    availability_rule_delete,
    availability_rule_update,
    doctor_set_approval,
)

# Selector


# Serializers


class DoctorDepartmentSerializer(serializers.ModelSerializer):
    clinic_name = serializers.CharField(source="clinic.name", read_only=True)

    class Meta:
        model = Department
        fields = ["id", "name", "clinic", "clinic_name"]
        read_only_fields = fields


class DoctorSerializer(serializers.ModelSerializer):
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)
    display_name = serializers.CharField(read_only=True)
    departments = DoctorDepartmentSerializer(many=True, read_only=True)

    class Meta:
        model = Doctor
        fields = [
            "id",
            "user",
            "display_name",
            "first_name",
            "last_name",
            "specialization",
            "license_number",
            "approval_status",
            "approved_at",
            "departments",
        ]
        read_only_fields = fields


def _scoped_department(**kwargs: Any) -> ScopedPrimaryKeyField:
    return ScopedPrimaryKeyField(
        scope=departments_for, noun="department", queryset=Department.objects.none(), **kwargs
    )


class AvailabilityRuleSerializer(StrictInputMixin, serializers.ModelSerializer):
    department = _scoped_department()
    department_name = serializers.CharField(source="department.name", read_only=True)

    class Meta:
        model = AvailabilityRule
        fields = [
            "id",
            "doctor",
            "department",
            "department_name",
            "weekday",
            "start_time",
            "end_time",
            "slot_minutes",
            "capacity",
            "valid_from",
            "valid_to",
            "created_at",
        ]
        read_only_fields = ["id", "doctor", "created_at"]
        extra_kwargs = {"valid_from": {"required": False, "help_text": "Defaults to today."}}

    # Only the shape of the input here: availability_rule_create / _update hold the rules (end after
    # start, valid_to after valid_from, no overlap) and name the field they refuse.


class AvailabilityExceptionSerializer(StrictInputMixin, serializers.ModelSerializer):
    department = _scoped_department(required=False, allow_null=True)
    department_name = serializers.CharField(source="department.name", read_only=True, allow_null=True)

    class Meta:
        model = AvailabilityException
        fields = [
            "id",
            "doctor",
            "kind",
            "date",
            "start_time",
            "end_time",
            "department",
            "department_name",
            "slot_minutes",
            "capacity",
            "reason",
            "created_at",
        ]
        read_only_fields = ["id", "doctor", "created_at"]

    # Only the shape of the input here: availability_exception_create holds the rules (both times or
    # neither, an extra session's place and times) and names the field it refuses.


# Views


class DoctorViewSet(viewsets.ReadOnlyModelViewSet):
    """Doctors in the user's scope, with their departments; ?department=, ?clinic=, ?approval_status=."""

    queryset = Doctor.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = DoctorSerializer
    filterset_class = DoctorFilter

    def get_queryset(self):
        return (
            doctors_for(self.request.user)
            .select_related("user")
            .prefetch_related(Prefetch("departments", queryset=Department.objects.select_related("clinic")))
        )

    def get_permissions(self):
        if self.action in ("approve", "suspend"):
            return [IsAdmin()]
        return [IsAuthenticated()]

    @extend_schema(request=None, responses=DoctorSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._set_approval(ApprovalStatus.APPROVED)

    @extend_schema(request=None, responses=DoctorSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        return self._set_approval(ApprovalStatus.SUSPENDED)

    def _set_approval(self, approval_status: str) -> Response:
        doctor = doctor_set_approval(
            actor=signed_in_user(self.request), doctor=self.get_object(), status=approval_status
        )
        return Response(self.get_serializer(doctor).data)


class CanEditDoctorSchedule(BasePermission):
    """Writes: the doctor themself, or admins and staff (who only see doctors of their clinics)."""

    message = "Only the doctor or clinic staff may change this schedule."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        doctor = view.get_doctor()  # an unknown or other tenant's doctor answers 404 before any 403
        user = request.user
        return user.is_clinic_staff or doctor.user_id == user.pk


class _DoctorScheduleViewSet(viewsets.GenericViewSet):
    permission_classes = [IsClinician, CanEditDoctorSchedule]

    def get_doctor(self) -> Doctor:
        if not hasattr(self, "_doctor"):
            self._doctor = get_object_or_404(
                doctors_for(signed_in_user(self.request)), pk=self.kwargs["doctor_pk"]
            )
        return self._doctor


class AvailabilityRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _DoctorScheduleViewSet):
    """A doctor's weekly sessions (clinic local time). Each change re-plans the doctor's slots."""

    queryset = AvailabilityRule.objects.none()
    serializer_class = AvailabilityRuleSerializer

    def get_queryset(self):
        return self.get_doctor().availability_rules.select_related("department")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = availability_rule_create(
            actor=request.user, doctor=self.get_doctor(), **serializer.validated_data
        )
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = availability_rule_update(actor=request.user, rule=rule, **serializer.validated_data)
        return Response(self.get_serializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        availability_rule_delete(actor=request.user, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AvailabilityExceptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _DoctorScheduleViewSet):
    """Dates that differ from the weekly rules: leave (removes time) or an extra session."""

    queryset = AvailabilityException.objects.none()
    serializer_class = AvailabilityExceptionSerializer

    def get_queryset(self):
        return self.get_doctor().availability_exceptions.select_related("department")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        exception = availability_exception_create(
            actor=request.user, doctor=self.get_doctor(), **serializer.validated_data
        )
        return Response(self.get_serializer(exception).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        availability_exception_delete(actor=request.user, exception=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
