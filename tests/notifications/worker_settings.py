"""Settings of the Celery worker processes the real-worker tests start: the test settings, plus the
overrides the test passes as JSON in OPD_TEST_WORKER_SETTINGS (the same values it gives its own process
through pytest-django's `settings` fixture: queue name, SMS folder, lease, backend ...)."""

import json
import os

from opd.settings.test import *  # noqa: F403

globals().update(json.loads(os.environ.get("OPD_TEST_WORKER_SETTINGS", "{}")))
