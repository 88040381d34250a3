from django.apps import apps
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from opd.core import observability, second_factor_views
from opd.core import views as core_views
from opd.core.api.views import SchemaView
from opd.core.forms import ServicePasswordChangeForm, ServiceSetPasswordForm
from opd.core.ratelimit import rate_limited

handler404 = "opd.core.api.exceptions.page_not_found"
handler500 = "opd.core.api.exceptions.server_error"

urlpatterns = [
    # First: the API is what answers most requests, and Django tries the patterns in order.
    path("api/v1/", include("opd.api_urls")),
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # Django's account views, with forms that save through user_set_password (audited); the rest as is.
    # Sign-in and reset are rate-limited like the API (opd.core.ratelimit); django-axes locks sign-in.
    path("accounts/login/", rate_limited("signin")(auth_views.LoginView.as_view()), name="login"),
    path(
        "accounts/password_reset/",
        rate_limited("password_reset", subject="email")(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(form_class=ServicePasswordChangeForm),
        name="password_change",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(form_class=ServiceSetPasswordForm),
        name="password_reset_confirm",
    ),
    path("accounts/second-factor/", second_factor_views.verify, name="second-factor"),
    path("accounts/second-factor/enrol/", second_factor_views.enrol, name="second-factor-enrol"),
    path("accounts/security/", second_factor_views.security, name="account-security"),
    path(
        "accounts/security/recovery-codes/",
        second_factor_views.recovery_codes_renew,
        name="account-recovery-codes",
    ),
    path(
        "accounts/security/turn-off/",
        second_factor_views.second_factor_turn_off,
        name="account-second-factor-off",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("portal/", include("portal.urls")),
    # The signed manage-booking link from confirmations and reminders: no sign-in (portal.views.manage).
    path("m/", include("portal.manage_urls")),
    path("queue/", include("scheduling.urls")),
    path("patients/", include("patients.urls")),
    path("consultations/", include("consultations.urls")),
    path("billing/", include("billing.urls")),
    path("analytics/", include("analytics.urls")),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (?script), so the page needs no inline script
    # under the Content-Security-Policy; templates/drf_spectacular/swagger_ui.html moves the inline style.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

if apps.is_installed("devtools"):
    urlpatterns.append(path("devtools/", include("devtools.urls")))
