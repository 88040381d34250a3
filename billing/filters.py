"""Query filters of the invoice list. Bad values answer 400 naming the parameter."""

from __future__ import annotations

import django_filters

from opd.core.filters import IdFilter

from .models import Invoice, InvoiceStatus


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InvoiceStatus.choices)
    patient = IdFilter(field_name="patient_id", label="Patient id")
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")
    appointment = IdFilter(field_name="appointment_id", label="Appointment id")

    class Meta:
        model = Invoice
        fields = ["status", "patient", "clinic", "appointment"]
