"""Query parameters of the statistics endpoints, and the shapes they answer (for the schema)."""

from __future__ import annotations

from rest_framework import serializers

from consultations.models import CareCategory, News2Band


class IdListField(serializers.ListField):
    """Ids given as repeated parameters (?clinic=1&clinic=2) or comma-separated (?clinic=1,2)."""

    child = serializers.IntegerField(min_value=1)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        parts = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(parts)


class StatsQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="First day (clinic local), YYYY-MM-DD.")
    date_to = serializers.DateField(required=False, help_text="Last day (clinic local), inclusive.")
    clinic = IdListField(required=False, help_text="Clinic ids (repeat, or separate with commas).")
    department = serializers.IntegerField(required=False, min_value=1)
    doctor = serializers.IntegerField(required=False, min_value=1)


def _int(**kwargs):
    return serializers.IntegerField(**kwargs)


def _float(help_text: str):
    return serializers.FloatField(allow_null=True, help_text=help_text)


class DailyRowSerializer(serializers.Serializer):
    date = serializers.DateField(allow_null=True, help_text="Null in the summary.")
    appointments = _int(help_text="Appointments that day, whatever their status.")
    booked = _int()
    checked_in = _int()
    in_consultation = _int()
    completed = _int()
    cancelled = _int()
    no_show = _int()
    no_show_rate = _float("No-shows / appointments not cancelled.")
    cancellation_rate = _float("Cancelled / appointments.")
    new_patients = _int(help_text="Completed visits that were the patient's first in the organization.")
    returning_patients = _int(help_text="Other completed visits.")
    wait_count = _int(help_text="Appointments with a check-in and a start time.")
    wait_avg_minutes = _float("Average wait from check-in to the start of the consultation.")
    wait_p90_minutes = _float("90th percentile of that wait (PERCENTILE_CONT); null in the summary.")
    consultation_count = _int()
    consultation_avg_minutes = _float("Average time from start to completion.")
    capacity = _int(help_text="Seats of the active slots that day.")
    seats_booked = _int()
    utilization = _float("Seats booked / capacity.")


class ScopeFieldsMixin(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    clinics = serializers.ListField(child=serializers.IntegerField(), help_text="The clinics counted.")
    department = serializers.IntegerField(allow_null=True)
    doctor = serializers.IntegerField(allow_null=True)


class DailyStatisticsSerializer(ScopeFieldsMixin):
    days = DailyRowSerializer(many=True)
    summary = DailyRowSerializer()


def _counts_row(name: str, total_help: str, columns: list[str]) -> type[serializers.Serializer]:
    """A row serializer with one count per choice (bands, categories), built from the model's choices."""
    fields = {
        "date": serializers.DateField(),
        "total": serializers.IntegerField(help_text=total_help),
        **{column: serializers.IntegerField() for column in columns},
    }
    return type(name, (serializers.Serializer,), fields)


News2RowSerializer = _counts_row(
    "News2RowSerializer", "Consultations with a NEWS2 band, by day of the vitals.", list(News2Band.values)
)


class News2DailySerializer(ScopeFieldsMixin):
    days = News2RowSerializer(many=True)


CareNoteRowSerializer = _counts_row(
    "CareNoteRowSerializer", "Care notes written that day (clinic local).", list(CareCategory.values)
)


class CareNotesDailySerializer(ScopeFieldsMixin):
    days = CareNoteRowSerializer(many=True)
