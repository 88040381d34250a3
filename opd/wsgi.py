"""HTTP (pages, admin, API) under gunicorn, with persistent database connections."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opd.settings.base")
application = get_wsgi_application()
