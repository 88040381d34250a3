"""The project's URLs with the portal's API view mounted where opd/api_urls.py mounts it."""

from django.urls import include, path

from opd.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("api/v1/", include("opd.portal.api")), *project_urlpatterns]
