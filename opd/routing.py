"""Websocket routes of every app, mounted under /ws/ by opd.asgi."""

from notifications.routing import websocket_urlpatterns as notification_routes
from scheduling.routing import websocket_urlpatterns as queue_routes

websocket_urlpatterns: list = [*queue_routes, *notification_routes]
