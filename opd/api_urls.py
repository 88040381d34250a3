"""Every app's API under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("opd.core.api.urls")),
    path("", include("patients.api.urls")),
    path("", include("scheduling.api.urls_doctors")),
    path("", include("scheduling.api.urls_booking")),
    path("", include("scheduling.api.urls_queue")),
    path("", include("consultations.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("portal.api")),
    path("", include("billing.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("archive.api")),
]
