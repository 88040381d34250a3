"""Key material for API tokens and websocket tickets: random keys, and the digest under which they are kept."""

from __future__ import annotations

import hashlib
import secrets

PREFIX_LENGTH = 8


def new_key() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, 43 URL-safe characters


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
