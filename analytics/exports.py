"""Tables as files: the CSV every table exports, shared by the API, the page and scheduled reports."""

from __future__ import annotations

import csv
import io


def rows_to_csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue()
