"""/api/v1/notifications/ (with /{id}/resend/)."""

from opd.core.api.routers import IdRouter

from . import views

router = IdRouter()
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = router.urls
