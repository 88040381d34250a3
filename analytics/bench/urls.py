"""The project's URLs, plus the analytics pages and API wherever opd/urls.py does not mount them (yet)."""

from django.urls import NoReverseMatch, include, path, reverse

import opd.urls


def _has(name: str) -> bool:
    try:
        reverse(name, urlconf=opd.urls)
    except NoReverseMatch:
        return False
    return True


urlpatterns = list(opd.urls.urlpatterns)
if not _has("analytics:dashboard"):
    urlpatterns.append(path("analytics/", include("analytics.urls")))
if not _has("analytics-daily"):
    urlpatterns.append(path("api/v1/", include("analytics.api.urls")))
