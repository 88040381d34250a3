"""Absolute links for messages. A message is written by a worker that knows no request, so every link
is built on OPD_SITE_URL (the address people open), never on a host header or a default port."""

from __future__ import annotations

from django.conf import settings


def site_url() -> str:
    return str(settings.OPD_SITE_URL).rstrip("/")


def absolute_url(path: str) -> str:
    """`path` (from reverse()) on the deployment's own address."""
    return site_url() + path
