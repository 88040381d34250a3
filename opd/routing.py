"""Websocket routes of every app (the live queue arrives with the dashboard)."""

websocket_urlpatterns: list = []
