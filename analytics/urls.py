"""The analytics pages, mounted at /analytics/."""

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:table>.csv", views.export_csv, name="export"),
    path("reports/<int:pk>/download/", views.report_download, name="report-download"),
]
