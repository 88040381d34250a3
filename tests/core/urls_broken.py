"""The project's URLs plus plain Django views that fail, inside and outside /api/ (test_error_shape)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from opd.urls import handler404
from opd.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "urlpatterns"]


def broken(request: HttpRequest) -> HttpResponse:
    secret = 1 / 0
    return HttpResponse(str(secret))


urlpatterns = [
    path("api/v1/broken/", broken),
    path("broken/", broken),
    *project_urlpatterns,
]
