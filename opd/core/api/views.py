"""Sign-in for API clients (tokens, websocket tickets), the read-only organization tree (organizations,
clinics, departments) and the schema."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import django_filters
from django.conf import settings
from django.contrib.auth import authenticate, logout
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from opd.core.errors import ValidationFailed
from opd.core.filters import IdFilter
from opd.core.models import ApiToken, Clinic, Department, Organization
from opd.core.second_factor import (
    ENROLMENT_REQUIRED,
    SECOND_FACTOR_REQUIRED,
    is_enrolled,
    needs_second_factor,
)
from opd.core.selectors import live_api_tokens_for
from opd.core.services import (
    second_factor_verify,
    token_issue,
    token_revoke,
    tokens_revoke_all,
    ws_ticket_issue,
)
from opd.core.tenancy import clinics_for, departments_for, organizations_for, signed_in_user

from .schema import error_responses
from .serializers import (
    ApiTokenSerializer,
    ClinicSerializer,
    DepartmentSerializer,
    LoginSerializer,
    OrganizationSerializer,
    TokenIssuedSerializer,
    TokensRevokedSerializer,
    WsTicketSerializer,
)
from .signin import SignInProtectionMixin

BAD_CREDENTIALS = "Unable to log in with provided credentials."


class ObtainTokenView(SignInProtectionMixin, APIView):
    """POST username and password; answers a new token for `Authorization: Token ...` and when it expires.

    Each sign-in issues another token (one per device or program), valid OPD_TOKEN_TTL_HOURS. Credentials
    go through django.contrib.auth.authenticate with the request, so every authentication backend sees
    this door like the login pages: throttled per address and locked out per account and per address
    (django-axes), 429 either way (SignInProtectionMixin)."""

    authentication_classes = ()  # a stale session or token must not stand between a person and a sign-in
    permission_classes = (AllowAny,)

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenIssuedSerializer,
            **error_responses(
                403,
                descriptions={
                    403: "`second_factor_enrolment_required`: the account must have a second factor and has "
                    "none yet; it enrols by signing in once with a browser."
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None:  # wrong password, unknown name, or an inactive account: one answer for all
            raise serializers.ValidationError({"non_field_errors": [BAD_CREDENTIALS]}, code="authorization")
        second_factor = needs_second_factor(user)
        if second_factor:
            if not is_enrolled(user):
                raise exceptions.PermissionDenied(ENROLMENT_REQUIRED, code="second_factor_enrolment_required")
            code = serializer.validated_data.get("otp_code", "")
            if not code:
                raise serializers.ValidationError(
                    {"otp_code": [SECOND_FACTOR_REQUIRED]}, code="second_factor_required"
                )
            try:
                second_factor_verify(user=user, code=code, request=request._request)
            except ValidationFailed as exc:
                raise serializers.ValidationError(exc.fields, code="second_factor_invalid") from exc
        # A sign-in like the login page's: axes starts the failure count again and last_login moves.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, key = token_issue(
            user=user, name=request.headers.get("User-Agent", ""), second_factor=second_factor
        )
        return Response(TokenIssuedSerializer({"token": key, "expires_at": token.expires_at}).data)


class LogoutView(APIView):
    """Sign out: revokes the token this request was made with (a session client's session ends instead)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        user = signed_in_user(request)
        if isinstance(request.auth, ApiToken):
            token_revoke(actor=user, token=request.auth)
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in person's live API tokens (never the keys), to revoke one or all of them."""

    queryset = ApiToken.objects.none()
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return live_api_tokens_for(signed_in_user(self.request))

    @extend_schema(responses={204: None, **error_responses(404)})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke one of your tokens (another person's, or a revoked or expired one, is 404)."""
        token_revoke(actor=signed_in_user(request), token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: TokensRevokedSerializer})
    @action(detail=False, methods=["post"], url_path="revoke-all")
    def revoke_all(self, request: Request) -> Response:
        """Log out everywhere: revoke every live token of yours, the one of this request included."""
        user = signed_in_user(request)
        count = tokens_revoke_all(actor=user, user=user, reason="revoke_all")
        return Response(TokensRevokedSerializer({"revoked": count}).data)


class WsTicketView(APIView):
    """A single-use ticket to open one websocket as you, within OPD_WS_TICKET_SECONDS: `?ticket=...`.

    For clients without the session cookie; it keeps the long-lived token out of URLs (and access logs)."""

    @extend_schema(request=None, responses={201: WsTicketSerializer})
    def post(self, request: Request) -> Response:
        ticket, expires_at = ws_ticket_issue(user=signed_in_user(request))
        return Response(
            WsTicketSerializer({"ticket": ticket, "expires_at": expires_at}).data,
            status=status.HTTP_201_CREATED,
        )


class OrganizationViewSet(viewsets.ReadOnlyModelViewSet):
    """Organizations the user belongs to (every one for a superuser). Any signed-in user."""

    queryset = Organization.objects.none()  # the schema's hint; rows come from get_queryset
    serializer_class = OrganizationSerializer

    def get_queryset(self):
        return organizations_for(self.request.user)


class ClinicViewSet(viewsets.ReadOnlyModelViewSet):
    """Clinics the user works at (admins: the whole organization; patients: its active clinics)."""

    queryset = Clinic.objects.none()
    serializer_class = ClinicSerializer

    def get_queryset(self):
        return clinics_for(self.request.user)


class DepartmentFilter(django_filters.FilterSet):
    clinic = IdFilter(field_name="clinic_id", label="Clinic id")

    class Meta:
        model = Department
        fields = ["clinic"]


class DepartmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Departments of the clinics the user may see; ?clinic=<id> narrows to one clinic."""

    queryset = Department.objects.none()
    serializer_class = DepartmentSerializer
    filterset_class = DepartmentFilter

    def get_queryset(self):
        return departments_for(self.request.user)


class SchemaView(SpectacularAPIView):
    """/api/schema/: built once per process and served from memory.

    drf-spectacular builds the schema on request, loading its extensions lazily on the first build, and
    that first build is not thread-safe: two clients asking at once on a threaded or ASGI server got a
    500. The schema is public and names no server, so it is the same for every request of a deployment;
    a lock makes the first build the only one, keyed by URL configuration and API version (tests swap the
    URL configuration).
    """

    _lock = threading.Lock()
    _built: ClassVar[dict[tuple[str, str | None], dict[str, Any]]] = {}

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (str(self.urlconf or settings.ROOT_URLCONF), version)
        with self._lock:
            if key not in self._built:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                self._built[key] = generator.get_schema(request=request, public=self.serve_public)
        return Response(
            data=self._built[key],
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
