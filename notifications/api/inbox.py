"""The signed-in user's own in-app messages (the portal inbox), for API clients.

GET  /api/v1/me/messages/             delivered in-app messages, newest first (paginated)
GET  /api/v1/me/messages/unread/      {"unread_count": n}
POST /api/v1/me/messages/{id}/read/   mark one read (idempotent); another user's id is 404
POST /api/v1/me/messages/read-all/    mark all read; {"marked": n, "unread_count": 0}

Token or session auth; everyone signed in sees only messages addressed to them (selectors.inbox_for).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from opd.core.api.schema import error_responses
from opd.core.tenancy import signed_in_user
from scheduling.api.serializers import UtcDateTimeField

from ..models import Notification
from ..selectors import inbox_for, unread_count
from ..services import notification_mark_read, notifications_mark_all_read


class InboxMessageSerializer(serializers.ModelSerializer):
    sent_at = UtcDateTimeField(read_only=True)
    read_at = UtcDateTimeField(read_only=True, allow_null=True, help_text="Empty while unread.")

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "body", "appointment", "sent_at", "read_at"]
        read_only_fields = fields


class UnreadSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField(min_value=0)


class ReadAllSerializer(UnreadSerializer):
    marked = serializers.IntegerField(min_value=0, help_text="How many messages this call marked read.")


class _Inbox(GenericAPIView):
    queryset = Notification.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class: type[serializers.Serializer] = InboxMessageSerializer

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return inbox_for(signed_in_user(self.request))


class MyMessagesView(_Inbox):
    @extend_schema(
        summary="My messages",
        description="The signed-in user's delivered in-app messages, newest first. New ones are also "
        "pushed over the websocket ws/notifications/.",
        responses={
            200: InboxMessageSerializer(many=True),
            **error_responses(
                401, 404, descriptions={404: "No such page of the list (`page` past the last)."}
            ),
        },
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class MyUnreadCountView(_Inbox):
    serializer_class = UnreadSerializer

    @extend_schema(
        summary="How many of my messages are unread",
        responses={200: UnreadSerializer, **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        return Response({"unread_count": unread_count(signed_in_user(request))})


class MyMessageReadView(_Inbox):
    @extend_schema(
        summary="Mark one of my messages read",
        description="Idempotent: a message already read keeps its first read time.",
        request=None,
        responses={
            200: InboxMessageSerializer,
            **error_responses(401, 404, descriptions={404: "No such message in your inbox."}),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        notification = notification_mark_read(user=signed_in_user(request), notification_id=pk)
        return Response(self.get_serializer(notification).data)


class MyMessagesReadAllView(_Inbox):
    serializer_class = ReadAllSerializer

    @extend_schema(
        summary="Mark all my messages read",
        request=None,
        responses={200: ReadAllSerializer, **error_responses(401)},
    )
    def post(self, request: Request) -> Response:
        marked = notifications_mark_all_read(user=signed_in_user(request))
        return Response({"marked": marked, "unread_count": 0})
