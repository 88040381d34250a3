from __future__ import annotations

import django_filters

from opd.core.filters import IdFilter

from .models import Channel, Kind, Notification, Status


class NotificationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    patient = IdFilter(field_name="patient_id", label="Patient id")
    appointment = IdFilter(field_name="appointment_id", label="Appointment id")
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")

    class Meta:
        model = Notification
        fields = ["status", "channel", "kind", "patient", "appointment", "clinic"]
