"""Slots and appointments as the API shows them, and the bodies of booking, cancelling and rescheduling.

Times go out in UTC (ISO 8601, "Z"); `local_start` repeats the start in the clinic's time zone, named in
`time_zone`. Body ids are looked up among the rows the requesting user may see, so another tenant's id
answers 404 naming the field, exactly like an unknown one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from opd.core.api.serializers import FieldsBuiltOnce, ScopedPrimaryKeyField, StrictInputMixin
from opd.core.models import Clinic, Department
from opd.core.tenancy import ScopedId, departments_for
from patients.models import Patient
from patients.selectors import patients_for

from ..models import Appointment, Doctor, Slot
from ..selectors import slots_for


class UtcDateTimeField(serializers.DateTimeField):
    """Always UTC, whatever time zone is active for the request."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)


class AwareDateTimeField(UtcDateTimeField):
    """Input must carry its offset: a clinic-side "09:00" is ambiguous between time zones."""

    default_error_messages = {"naive": "Include a time zone offset, for example 2030-03-01T09:00:00Z."}

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class ClinicBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = Clinic
        fields = ["id", "name", "time_zone"]
        read_only_fields = fields


class DepartmentBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]
        read_only_fields = fields


class DoctorBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = Doctor
        fields = ["id", "name"]
        read_only_fields = fields


class PatientBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    name = serializers.CharField(source="full_name", read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "mrn", "name"]
        read_only_fields = fields


# The columns one slot of a listing is built from (SlotViewSet.list), joined in one query.
SLOT_LISTING_VALUES = (
    "id",
    "doctor_id",
    "doctor__user__first_name",
    "doctor__user__last_name",
    "doctor__user__username",
    "department_id",
    "department__name",
    "clinic_id",
    "clinic__name",
    "clinic__time_zone",
    "date",
    "start",
    "end",
    "capacity",
    "booked_count",
    "is_active",
)
_UTC = UtcDateTimeField()


def slot_listing_row(row: dict[str, Any], zones: dict[str, Any]) -> dict[str, Any]:
    """SlotSerializer's representation of one row of `.values(*SLOT_LISTING_VALUES)`.

    A listing builds 25 of these per request: model instances and nested serializers cost more than the
    queries (issue 18). The same output, field for field, is held by a test against SlotSerializer.
    `zones` caches ZoneInfo objects by name across the rows of a listing.
    """
    zone_name = row["clinic__time_zone"]
    zone = zones.get(zone_name)
    if zone is None:
        zone = zones[zone_name] = zoneinfo.ZoneInfo(zone_name)
    full_name = f"{row['doctor__user__first_name']} {row['doctor__user__last_name']}".strip()
    return {
        "id": row["id"],
        "doctor": {"id": row["doctor_id"], "name": f"Dr {full_name or row['doctor__user__username']}"},
        "department": {"id": row["department_id"], "name": row["department__name"]},
        "clinic": {"id": row["clinic_id"], "name": row["clinic__name"], "time_zone": zone_name},
        "date": row["date"].isoformat(),
        "start": _UTC.to_representation(row["start"]),
        "end": _UTC.to_representation(row["end"]),
        "local_start": timezone.localtime(row["start"], zone).isoformat(),
        "time_zone": zone_name,
        "capacity": row["capacity"],
        "booked_count": row["booked_count"],
        "seats_left": max(row["capacity"] - row["booked_count"], 0),
        "is_active": row["is_active"],
    }


class _LocalTimeMixin:
    """`local_start` and `time_zone` for an object with `start` and a `clinic` (select_related)."""

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_local_start(self, obj: Slot | Appointment) -> str:
        return timezone.localtime(obj.start, obj.clinic.tz).isoformat()


class SlotSerializer(_LocalTimeMixin, serializers.ModelSerializer):
    doctor = DoctorBriefSerializer(read_only=True)
    department = DepartmentBriefSerializer(read_only=True)
    clinic = ClinicBriefSerializer(read_only=True)
    date = serializers.DateField(read_only=True, help_text="The day in the clinic's time zone.")
    start = UtcDateTimeField(read_only=True)
    end = UtcDateTimeField(read_only=True)
    local_start = serializers.SerializerMethodField(help_text="The start in the clinic's time zone.")
    time_zone = serializers.CharField(source="clinic.time_zone", read_only=True)
    seats_left = serializers.IntegerField(read_only=True)

    class Meta:
        model = Slot
        fields = [
            "id",
            "doctor",
            "department",
            "clinic",
            "date",
            "start",
            "end",
            "local_start",
            "time_zone",
            "capacity",
            "booked_count",
            "seats_left",
            "is_active",
        ]
        read_only_fields = fields


class AppointmentSerializer(FieldsBuiltOnce, _LocalTimeMixin, serializers.ModelSerializer):
    patient = PatientBriefSerializer(read_only=True)
    doctor = DoctorBriefSerializer(read_only=True)
    department = DepartmentBriefSerializer(read_only=True)
    clinic = ClinicBriefSerializer(read_only=True)
    slot: serializers.PrimaryKeyRelatedField[Slot] = serializers.PrimaryKeyRelatedField(read_only=True)
    start = UtcDateTimeField(read_only=True)
    end = UtcDateTimeField(read_only=True)
    local_start = serializers.SerializerMethodField(help_text="The start in the clinic's time zone.")
    time_zone = serializers.CharField(source="clinic.time_zone", read_only=True)
    booked_at = UtcDateTimeField(read_only=True)
    checked_in_at = UtcDateTimeField(read_only=True)
    started_at = UtcDateTimeField(read_only=True)
    completed_at = UtcDateTimeField(read_only=True)
    cancelled_at = UtcDateTimeField(read_only=True)
    no_show_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "status",
            "patient",
            "doctor",
            "department",
            "clinic",
            "slot",
            "start",
            "end",
            "local_start",
            "time_zone",
            "reason",
            "channel",
            "booked_at",
            "checked_in_at",
            "started_at",
            "completed_at",
            "cancelled_at",
            "no_show_at",
            "cancellation_reason",
            "reschedule_count",
        ]
        read_only_fields = fields


def _bookable_slots_for(user):
    # Past and withdrawn slots stay reachable so the service can say why they cannot be booked (400).
    # Only the id is needed: the booking service reads what it checks itself (selectors.slot_for_booking).
    return slots_for(user, include_closed=True)


def _slot_scope_for_booking(user):
    # Deferred (a ScopedId): the booking service folds this scope into its one locking read.
    return slots_for(user, include_closed=True, lazy=True)


class AppointmentBookSerializer(StrictInputMixin, serializers.Serializer):
    """Give `slot` to book that slot, or `department` (with an optional window) for the first available."""

    slot = ScopedPrimaryKeyField(
        scope=_slot_scope_for_booking,
        noun="slot",
        deferred=True,
        queryset=Slot.objects.none(),
        required=False,
        help_text="Book this slot. Give either slot or department.",
    )
    department = ScopedPrimaryKeyField(
        scope=departments_for,
        noun="department",
        queryset=Department.objects.none(),
        required=False,
        help_text="Book the first available slot here: the doctor with the fewest bookings that day, "
        "then the earliest slot. Give either slot or department.",
    )
    patient = ScopedPrimaryKeyField(
        scope=patients_for,
        noun="patient",
        deferred=True,
        queryset=Patient.objects.none(),
        required=False,
        help_text="Required for staff; a patient may leave it out to book for themselves.",
    )
    after = AwareDateTimeField(required=False, help_text="With department: not before this time.")
    before = AwareDateTimeField(required=False, help_text="With department: ending by this time.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    def to_internal_value(self, data: Any) -> Any:
        # Which kind of booking this is comes first: it decides what the other fields mean.
        if hasattr(data, "get"):
            given = [name for name in ("slot", "department") if data.get(name) is not None]
            if len(given) != 1:
                message = (
                    "Give either slot or department, not both."
                    if given
                    else "Give slot (to book it) or department (to book the first available)."
                )
                raise serializers.ValidationError({"slot": [message], "department": [message]})
            if "slot" in given:
                extra = [name for name in ("after", "before") if data.get(name) is not None]
                if extra:
                    raise serializers.ValidationError(
                        {name: ["Only used with department, not with slot."] for name in extra}
                    )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("patient") is None:
            user = self.context["request"].user
            if not user.is_patient:
                raise serializers.ValidationError({"patient": ["This field is required."]})
            # Their own record, found by the booking service's read (404 there when none is linked).
            attrs["patient"] = ScopedId(pk=None, scope=patients_for(user))
        return attrs


class AppointmentCancelSerializer(StrictInputMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AppointmentRescheduleSerializer(StrictInputMixin, serializers.Serializer):
    slot = ScopedPrimaryKeyField(
        scope=_bookable_slots_for, noun="slot", queryset=Slot.objects.none(), help_text="The new slot."
    )
