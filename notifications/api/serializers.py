"""Messages as the API shows them. Times in UTC (ISO 8601, "Z")."""

from __future__ import annotations

from rest_framework import serializers

from scheduling.api.serializers import UtcDateTimeField

from ..models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    scheduled_for = UtcDateTimeField(read_only=True)
    sent_at = UtcDateTimeField(read_only=True)
    created_at = UtcDateTimeField(read_only=True)
    to = serializers.CharField(read_only=True, help_text="E-mail address or phone number; empty for in-app.")
    last_error = serializers.SerializerMethodField(
        help_text="Why the last attempt failed (clinic staff only; empty for others)."
    )

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "channel",
            "status",
            "to",
            "patient",
            "user",
            "appointment",
            "clinic",
            "subject",
            "body",
            "lead_minutes",
            "scheduled_for",
            "sent_at",
            "attempts",
            "last_error",
            "resend_of",
            "created_at",
        ]
        read_only_fields = fields

    def get_last_error(self, obj: Notification) -> str:
        # Provider errors can name internal hosts; patients see that a message failed, not why.
        return obj.last_error if self.context.get("show_errors") else ""
