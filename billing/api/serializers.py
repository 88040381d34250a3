from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from ..models import Invoice, InvoiceLine, Payment, PaymentMethod, Refund


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["description", "quantity", "unit_price", "amount"]


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "method", "amount", "terminal_reference", "insurer", "claim_reference", "received_at"]


class StaffPaymentSerializer(PaymentSerializer):
    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "received_by"]


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "method", "amount", "reason", "issued_at"]


class InvoiceSerializer(serializers.ModelSerializer):
    """An invoice as its patient sees it: what was charged, paid, given back and is still owed."""

    clinic_name = serializers.CharField(source="clinic.name", read_only=True)
    balance = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="What is still owed."
    )
    lines = InvoiceLineSerializer(many=True, read_only=True)
    payments = PaymentSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "total",
            "amount_paid",
            "amount_refunded",
            "balance",
            "issued_at",
            "clinic",
            "clinic_name",
            "appointment",
            "lines",
            "payments",
            "refunds",
        ]


class StaffInvoiceSerializer(InvoiceSerializer):
    patient_name = serializers.CharField(source="patient.full_name", read_only=True)
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)
    payments = StaffPaymentSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "patient", "patient_name", "patient_mrn"]


class PaymentInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="In the invoice's currency, to the cent, at most the balance.",
    )
    terminal_reference = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="Required for card payments."
    )
    insurer = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default="", help_text="Required for insurance."
    )
    claim_reference = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="Required for insurance."
    )


class RefundInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Left out: the most the clinic's cancellation policy allows.",
    )
    method = serializers.ChoiceField(
        choices=PaymentMethod.choices, required=False, help_text="Left out: how the last payment was made."
    )
