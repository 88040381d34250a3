"""Invoices under /api/v1/: staff list, read, take payments and refund; a patient reads their own.

Who may call: /invoices/ admins and staff at their clinics (doctors and patients 403; another clinic's or
organization's invoice 404); /me/invoices/ the signed-in patient only.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.permissions import IsClinicStaff
from opd.core.api.schema import error_responses
from opd.core.idempotency import HEADER, idempotent
from opd.core.tenancy import signed_in_user

from ..filters import InvoiceFilter
from ..models import Invoice
from ..selectors import invoices_for
from ..services import payment_record, refund_issue
from .serializers import (
    InvoiceSerializer,
    PaymentInputSerializer,
    RefundInputSerializer,
    RefundSerializer,
    StaffInvoiceSerializer,
    StaffPaymentSerializer,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Up to 255 visible ASCII characters (a UUID). A retry with the same key and body gets the "
    "first answer again (header Idempotent-Replayed: true) without taking the money twice; the same key "
    "with another body answers 422.",
)

MONEY_WRITE_MEANINGS = {
    400: "Invalid input, each field named in `fields` (an amount that is not money, a card payment without "
    "its terminal reference, an insurance payment without insurer and claim reference).",
    404: "Unknown, or an invoice of another clinic or organization.",
    422: "The Idempotency-Key was used before with another request.",
    409: "Code `more_than_balance`: the amount is more than is owed (`fields.amount` says the most); "
    "`not_payable`: the invoice is void or refunded; `more_than_refundable`: beyond the clinic's "
    "cancellation policy; `nothing_to_refund`.",
}


def _with_rows(qs: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return qs.select_related("clinic", "patient").prefetch_related("lines", "payments", "refunds")


@extend_schema_view(
    list=extend_schema(
        summary="List invoices",
        description="Newest first; admins see their organization's, staff their clinics'.",
        responses={200: StaffInvoiceSerializer, **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Show an invoice", responses={200: StaffInvoiceSerializer, **error_responses(401, 403, 404)}
    ),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Invoice.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = StaffInvoiceSerializer
    filterset_class = InvoiceFilter
    permission_classes = [IsClinicStaff]

    def get_queryset(self) -> QuerySet[Invoice]:
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return _with_rows(invoices_for(signed_in_user(self.request)))

    def _answer(self, invoice: Invoice, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(
            StaffInvoiceSerializer(self.get_queryset().get(pk=invoice.pk)).data, status=status_code
        )

    @extend_schema(
        summary="Record a payment",
        description="Cash, card (with the terminal's reference) or insurance (insurer and claim reference); "
        "any part of the balance, never more. Two desks paying at once: the second is refused (409).",
        request=PaymentInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: StaffPaymentSerializer,
            **error_responses(400, 401, 403, 404, 409, 422, descriptions=MONEY_WRITE_MEANINGS),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent(scope="invoice.payment")
    def payments(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        data = PaymentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment = payment_record(actor=signed_in_user(request), invoice=invoice, **data.validated_data)
        return Response(StaffPaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Refund",
        description="Gives money back within the clinic's cancellation policy; the invoice is then settled.",
        request=RefundInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: RefundSerializer,
            **error_responses(400, 401, 403, 404, 409, 422, descriptions=MONEY_WRITE_MEANINGS),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent(scope="invoice.refund")
    def refunds(self, request: Request, pk: str | None = None) -> Response:
        invoice = self.get_object()
        data = RefundInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = refund_issue(actor=signed_in_user(request), invoice=invoice, **data.validated_data)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class IsPatient(BasePermission):
    message = "Only a patient sees their own invoices here; staff use /api/v1/invoices/."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_patient)


class MyInvoicesView(generics.ListAPIView):
    queryset = Invoice.objects.none()
    serializer_class = InvoiceSerializer
    permission_classes = [IsPatient]

    def get_queryset(self) -> QuerySet[Invoice]:
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return _with_rows(invoices_for(signed_in_user(self.request)).exclude(status="draft"))

    @extend_schema(
        summary="My invoices",
        description="The signed-in patient's invoices, newest first, with payments, refunds and the balance.",
        responses={
            200: InvoiceSerializer(many=True),
            **error_responses(
                401, 403, 404, descriptions={404: "No such page of the list (`page` past the last)."}
            ),
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)
