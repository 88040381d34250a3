"""ASGI entry point: websockets under /ws/, and HTTP too so one process can serve the embedded default.

HTTP goes to Django's WSGI handler on a pool of threads (a2wsgi's, with one hand-over between the loop and
a thread per request: opd.core.asgi_http), not to Django's ASGI handler. Every
view here is synchronous; the ASGI handler runs each request's sync code on one shared thread
(thread_sensitive) with several event-loop hops per request, which measured 3-10x below gunicorn on the
same view (issue 18). The WSGI path runs requests side by side in threads, as a threaded WSGI server
does; websockets still go through Channels. `OPD_ASGI_HTTP_THREADS` sets the pool's size.

Those request threads send channel-layer messages (a booking's queue event) through
opd.core.channel_send, which hands them to this process's event loop, recorded here on each connection:
the in-memory layer of `make run` is only safe from that loop.
"""

import asyncio
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opd.settings.base")
get_asgi_application()  # django.setup() before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from opd.core import log_redaction  # noqa: E402
from opd.core.asgi_http import BufferedWSGIMiddleware  # noqa: E402
from opd.core.channel_send import bind_server_loop, serving_requests  # noqa: E402
from opd.core.observability import CountOpenWebsockets  # noqa: E402
from opd.core.ws_auth import TokenAuthMiddleware  # noqa: E402
from opd.routing import websocket_urlpatterns  # noqa: E402

# The server logs query strings, where a websocket ticket travels: keep it out of the log.
log_redaction.install()

# Django's WSGI handler on the request threads (channel sends handed to the server loop: channel_send).
http_application = BufferedWSGIMiddleware(
    serving_requests(get_wsgi_application()),
    workers=settings.OPD_ASGI_HTTP_THREADS,
)

# Websockets: the Origin must be one of ALLOWED_HOSTS (so another site's page cannot use a visitor's
# session; other clients send an Origin header too), then the session cookie or an API token signs in.
router = ProtocolTypeRouter(
    {
        "http": http_application,
        # Counted outermost: a socket is open from its accept to its end, whoever refused or closed it.
        "websocket": CountOpenWebsockets(
            AllowedHostsOriginValidator(
                AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # The loop that serves HTTP is the one channel-layer sends from its request threads go to. Only HTTP
    # binds it: a websocket's own sends are made on the loop already, and a process that only ever ran
    # websocket consumers on short-lived loops (a test's communicator) must not hand sends to one of
    # them from unrelated threads (that hung a test's loop at its close).
    if scope["type"] == "http":
        bind_server_loop(asyncio.get_running_loop())
    await router(scope, receive, send)
