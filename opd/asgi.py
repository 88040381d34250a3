"""ASGI entry point: websockets under /ws/, and HTTP too so one process can serve the embedded default."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opd.settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from opd.core import log_redaction  # noqa: E402
from opd.core.observability import CountOpenWebsockets  # noqa: E402
from opd.core.ws_auth import TokenAuthMiddleware  # noqa: E402
from opd.routing import websocket_urlpatterns  # noqa: E402

# The server logs query strings, where a websocket ticket travels: keep it out of the log.
log_redaction.install()

# Websockets: the Origin must be one of ALLOWED_HOSTS (so another site's page cannot use a visitor's
# session; other clients send an Origin header too), then the session cookie or an API token signs in.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Counted outermost: a socket is open from its accept to its end, whoever refused or closed it.
        "websocket": CountOpenWebsockets(
            AllowedHostsOriginValidator(
                AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)
