"""The router every app's API uses: ids in paths are ASCII digits, anything else is a 404 before the view."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

# DRF's default, [^/.]+, lets "²" through to the view, where it passes str.isdigit() and then fails int().
ID_REGEX = "[0-9]+"


class IdRouter(SimpleRouter):
    """A SimpleRouter whose lookups default to ASCII digits (a viewset's own lookup_value_regex still wins)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._default_value_pattern = ID_REGEX
