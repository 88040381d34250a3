"""/api/v1/notifications/ (with /{id}/resend/), and the signed-in user's inbox under /api/v1/me/messages/."""

from django.urls import path

from opd.core.api.routers import IdRouter

from . import inbox, views

router = IdRouter()
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("me/messages/", inbox.MyMessagesView.as_view(), name="my-messages"),
    path("me/messages/unread/", inbox.MyUnreadCountView.as_view(), name="my-messages-unread"),
    path("me/messages/read-all/", inbox.MyMessagesReadAllView.as_view(), name="my-messages-read-all"),
    path("me/messages/<int:pk>/read/", inbox.MyMessageReadView.as_view(), name="my-message-read"),
    *router.urls,
]
