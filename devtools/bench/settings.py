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

# The load generator is one address and two accounts sending thousands of bookings a minute: a test rig,
# not a clinic. The booking rate limits (opd.core.api.throttling, OPD_RATE_BOOKING_*) would turn every
# booking figure into a measurement of the 429 answer, so the bench's servers run without them (a rate
# that is not configured does not limit). Sign-in limits stay: the bench does not sign in over HTTP.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # noqa: F405
        "booking_ip": None,
        "booking_user": None,
        "booking_patient": None,
    },
}
