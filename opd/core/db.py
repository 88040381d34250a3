"""Database helpers shared by services."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection

from .errors import Conflict

T = TypeVar("T")

# MySQL/MariaDB: 1213 deadlock (InnoDB rolled the whole transaction back), 1205 lock wait timeout.
RETRYABLE_ERRORS = {1213, 1205}


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and bool(exc.args) and exc.args[0] in RETRYABLE_ERRORS


def retry_on_deadlock(func: Callable[..., T] | None = None, *, attempts: int = 5):
    """Run a transactional function again when InnoDB chose it as a deadlock victim.

    InnoDB resolves a lock cycle by rolling back one whole transaction and expects the application
    to retry. Only the outermost transaction can retry, so inside an open atomic block the error
    goes up unchanged; at the top, a retry that keeps failing becomes a 409 that wrote nothing.
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> T:
            if connection.in_atomic_block:
                return fn(*args, **kwargs)
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not is_retryable(exc):
                        raise
                    if attempt == attempts:
                        raise Conflict(
                            "The clinic's booking system is busy; nothing was changed. Please try again.",
                            code="busy",
                        ) from exc
                    time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 (jitter, not security)
            raise AssertionError("unreachable")

        return wrapper

    return decorate(func) if func is not None else decorate
