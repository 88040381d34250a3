"""Mounted at /devtools/ by opd/urls.py only where the app is installed (never in production)."""

from django.urls import path

from . import views

urlpatterns = [
    path("ping/", views.PingView.as_view(), name="devtools-ping"),
]
