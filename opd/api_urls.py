"""Every app's API under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("opd.core.api.urls")),
    path("", include("patients.api.urls")),
    path("", include("scheduling.api.urls_doctors")),
    path("", include("scheduling.api.urls_booking")),
]
