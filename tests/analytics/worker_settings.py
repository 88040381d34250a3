"""Settings of the Celery worker that test_report_worker starts: the project's, with analytics mounted."""

from opd.settings.base import *  # noqa: F403

ROOT_URLCONF = "tests.analytics.urls"
