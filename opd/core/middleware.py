"""Session lifetime, the cache headers of authenticated answers, and the second factor's door."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from opd.core.api.exceptions import error_body, is_api
from opd.core.second_factor import SECOND_FACTOR_REQUIRED, needs_second_factor

LAST_ACTIVITY_KEY = "_opd_last_activity"
STARTED_KEY = "_opd_session_started"
# Writing the last-activity mark on every request would save the session row on every request; once a
# minute keeps the idle clock within a minute of the truth.
ACTIVITY_RESOLUTION_SECONDS = 60


def idle_limit_seconds(user: object) -> int:
    minutes = (
        settings.OPD_SESSION_IDLE_MINUTES_PATIENT
        if getattr(user, "role", None) == "patient"
        else settings.OPD_SESSION_IDLE_MINUTES_STAFF
    )
    return int(minutes) * 60


def _minutes(seconds: int) -> str:
    minutes = seconds // 60
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@receiver(user_logged_in, dispatch_uid="opd.core.middleware.start_session_clocks")
def start_session_clocks(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """A sign-in starts both clocks afresh: login() keeps the session's data when the same user signs in
    again, and an old start would end the new session early. (Connected here, where the middleware that
    reads the clocks is loaded with the first request.)"""
    if request is not None and hasattr(request, "session"):
        now = int(timezone.now().timestamp())
        request.session[STARTED_KEY] = now
        request.session[LAST_ACTIVITY_KEY] = now


class SessionLifetimeMiddleware:
    """Signs a session user out after an idle spell (by role) or once the session is older than
    SESSION_COOKIE_AGE, however active it was.

    Django's own expiry slides with every session save, so it cannot hold an absolute lifetime alone: the
    session remembers when it started and when it was last used. Token clients carry no session and are
    not touched. Pages go to the login form with a message; API session clients get a 401 in the error shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = request.session
        if SESSION_KEY in session:
            now = int(timezone.now().timestamp())
            started = session.get(STARTED_KEY)
            last = session.get(LAST_ACTIVITY_KEY)
            idle = idle_limit_seconds(request.user)
            if isinstance(last, int) and now - last > idle:
                return self._signed_out(
                    request, f"You were signed out after {_minutes(idle)} without activity."
                )
            if isinstance(started, int) and now - started > settings.SESSION_COOKIE_AGE:
                return self._signed_out(
                    request,
                    f"You were signed out: a session lasts at most {_minutes(settings.SESSION_COOKIE_AGE)}.",
                )
            if not isinstance(started, int):
                session[STARTED_KEY] = now
            if not isinstance(last, int) or now - last >= ACTIVITY_RESOLUTION_SECONDS:
                session[LAST_ACTIVITY_KEY] = now
        return self.get_response(request)

    @staticmethod
    def _signed_out(request: HttpRequest, message: str) -> HttpResponseBase:
        logout(request)  # flushes the session: a new, empty one, so the message below survives
        if is_api(request):
            response: HttpResponseBase = JsonResponse(error_body("session_expired", message), status=401)
            response["WWW-Authenticate"] = "Token"
            return response
        messages.info(request, message)
        login_url = reverse(settings.LOGIN_URL)
        if request.headers.get("HX-Request"):
            # htmx would swap the login page into a fragment; this sends the whole window there instead.
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            if page.path:
                login_url += "?" + urlencode({"next": urlunsplit(("", "", page.path, page.query, ""))})
            htmx_redirect = HttpResponse(status=200)
            htmx_redirect["HX-Redirect"] = login_url
            return htmx_redirect
        if request.method == "GET":
            login_url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(login_url)


class NoStoreAuthenticatedMiddleware:
    """`Cache-Control: no-store` on every answer to a signed-in user or a request carrying credentials:
    patient data must not stay in a browser's or a proxy's cache. Static files never reach here (WhiteNoise
    answers them first), and anonymous pages (login, healthz, the schema) keep their own headers.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # DRF's token authentication sets request.user on the Django request too, so this sees API users.
        user = getattr(request, "user", None)
        if "HTTP_AUTHORIZATION" in request.META or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
            response["Pragma"] = "no-cache"
        return response


# Pages a signed-in person reaches before giving the factor: signing out, the factor's own pages, and a
# forgotten password (which signs nobody in).
EXEMPT_URL_NAMES = frozenset(
    {
        "login",
        "logout",
        "second-factor",
        "second-factor-enrol",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
        "admin:login",
        "admin:logout",
        "healthz",
        "readyz",
        "api-token",
    }
)


def _exempt(request: HttpRequest) -> bool:
    if request.path.startswith(settings.STATIC_URL or "/static/"):
        return True
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return True  # a 404 shows nothing
    return match.view_name in EXEMPT_URL_NAMES


class SecondFactorMiddleware:
    """After django-otp's OTPMiddleware: a signed-in session that needs a second factor and has not given
    one reaches only the exempt pages; anything else sends it to give one (or answers 403 under /api/)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()  # type: ignore[attr-defined]
            and not _exempt(request)
            and needs_second_factor(user)
        ):
            if is_api(request):
                return JsonResponse(error_body("second_factor_required", SECOND_FACTOR_REQUIRED), status=403)
            return redirect(f"{reverse('second-factor')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
