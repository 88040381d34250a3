"""Websocket routes of the live queue (mounted by opd.routing, served by opd.asgi)."""

from django.urls import path

from . import consumers

websocket_urlpatterns: list = [
    path("ws/queue/doctor/<int:pk>/", consumers.DoctorQueueConsumer.as_asgi()),
    path("ws/queue/clinic/<int:pk>/", consumers.ClinicQueueConsumer.as_asgi()),
]
