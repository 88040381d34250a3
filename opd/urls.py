from django.apps import apps
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from opd.core import views as core_views

handler404 = "opd.core.api.exceptions.page_not_found"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("portal/", include("portal.urls")),
    path("queue/", include("scheduling.urls")),
    path("consultations/", include("consultations.urls")),
    path("analytics/", include("analytics.urls")),
    path("api/v1/", include("opd.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if apps.is_installed("devtools"):
    urlpatterns.append(path("devtools/", include("devtools.urls")))
