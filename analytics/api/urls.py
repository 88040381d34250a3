"""/api/v1/analytics/..."""

from django.urls import path

from . import views

urlpatterns = [
    path("analytics/daily/", views.DailyStatisticsView.as_view(), name="analytics-daily"),
    path("analytics/news2/daily/", views.News2DailyView.as_view(), name="analytics-news2-daily"),
    path(
        "analytics/care-notes/daily/", views.CareNotesDailyView.as_view(), name="analytics-care-notes-daily"
    ),
]
