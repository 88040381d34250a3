"""The router every app's API uses: ids in paths are ASCII digits, anything else is a 404 before the view."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter


class IdRouter(SimpleRouter):
    """Routes as Django paths with an `<int:pk>` lookup (a viewset's own lookup_value_converter still wins).

    DRF's default lookup, [^/.]+, let "²" through to the view, where it passed str.isdigit() and then
    failed int(): a 500. The int converter matches [0-9]+ and the schema says `integer`.
    """

    def __init__(self, trailing_slash: bool = True) -> None:
        super().__init__(trailing_slash=trailing_slash, use_regex_path=False)
        self._default_value_pattern = "int"
