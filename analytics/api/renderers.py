"""CSV for the statistics endpoints (?format=csv): the table of days, one column per figure."""

from __future__ import annotations

from rest_framework.renderers import BaseRenderer

from ..exports import rows_to_csv


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if not isinstance(data, dict):
            return b""
        if "days" not in data:  # an error answer: its code and message, still as CSV
            error = data.get("error", {})
            return rows_to_csv(["code", "message"], [error]).encode()
        view = (renderer_context or {}).get("view")
        columns = getattr(view, "columns", None) or (list(data["days"][0]) if data["days"] else [])
        response = (renderer_context or {}).get("response")
        if response is not None and view is not None:
            name = getattr(view, "csv_name", "statistics")
            response["Content-Disposition"] = (
                f'attachment; filename="{name}-{data.get("date_from")}-{data.get("date_to")}.csv"'
            )
        return rows_to_csv(columns, data["days"]).encode()
