"""Keeps credentials out of the ASGI server's log lines.

uvicorn logs each request and websocket handshake with its query string. A websocket ticket travels
there (`?ticket=...`: single use and short-lived, yet still a credential while it lives), and a client may
still send an old-style `?token=...`, which we no longer read but which would otherwise be logged.
"""

from __future__ import annotations

import logging
import re

CREDENTIAL_IN_QUERY = re.compile(r"(?i)([?&](?:ticket|token|key|password)=)[^&\s\"']*")
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error", "daphne.server", "daphne.http_protocol")


def redact(text: str) -> str:
    return CREDENTIAL_IN_QUERY.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Attach the filter to the ASGI servers' loggers (filters on a logger see every record it logs).
    Idempotent."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
