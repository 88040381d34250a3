"""GET /api/v1/notifications/ (and /{id}/), POST /api/v1/notifications/{id}/resend/.

Who may call: every signed-in user lists what notifications.selectors.notifications_for shows them
(clinic staff: their clinics' messages; patients and doctors: their own). Resending: admins and staff,
for messages they can see; another clinic's message is 404.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.permissions import IsClinicStaff, has_role
from opd.core.api.schema import error_responses
from opd.core.models import Role
from opd.core.tenancy import signed_in_user

from ..filters import NotificationFilter
from ..models import Notification
from ..selectors import notifications_for
from ..services import notification_resend
from .serializers import NotificationSerializer

MEANINGS = {
    400: "Invalid filter; `fields` names each problem.",
    403: "Only clinic staff may resend messages.",
    409: "Only sent or failed messages can be resent.",
}


@extend_schema_view(
    list=extend_schema(
        summary="List messages",
        responses={200: NotificationSerializer, **error_responses(400, 401, descriptions=MEANINGS)},
    ),
    retrieve=extend_schema(
        summary="Show a message",
        responses={200: NotificationSerializer, **error_responses(401, 404, descriptions=MEANINGS)},
    ),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages sent or to be sent (confirmations, reminders, cancellations ...), newest first."""

    queryset = Notification.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return notifications_for(signed_in_user(self.request))

    def get_permissions(self):
        if self.action == "resend":
            return [IsClinicStaff()]
        return super().get_permissions()

    def get_serializer_context(self) -> dict:
        # The stubs type the base's context as a read-only Mapping; it is a fresh dict, so extend a copy.
        return {
            **super().get_serializer_context(),
            "show_errors": has_role(self.request.user, Role.ADMIN, Role.STAFF),
        }

    @extend_schema(
        summary="Resend a message",
        description="Sends a sent or failed message again, as a new message (to the patient's current "
        "address); the original keeps its history. Clinic staff only.",
        request=None,
        responses={201: NotificationSerializer, **error_responses(401, 403, 404, 409, descriptions=MEANINGS)},
    )
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        copy = notification_resend(actor=signed_in_user(request), notification=self.get_object())
        return Response(self.get_serializer(copy).data, status=status.HTTP_201_CREATED)
