"""Settings of the processes the benchmark starts: the project's, with quieter logging."""

import warnings

from opd.settings.base import *  # noqa: F403

# The servers run without collectstatic (nothing static is measured).
warnings.filterwarnings("ignore", message="No directory at")

# Quiet servers: 409s are the expected answer of a contended booking, not news.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"django.request": {"level": "ERROR"}},
}
