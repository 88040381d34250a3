"""The second factor's pages: give a code after the password, enrol an authenticator, manage it.

A person whose session has not given the factor is sent here by SecondFactorMiddleware. Replacing or
removing a factor, and new recovery codes, need a session that has given it: the password alone must
not be enough to swap the authenticator for an attacker's.
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .errors import DomainError
from .models import RecoveryCode, User
from .second_factor import is_enrolled, required_by_policy
from .services import (
    second_factor_enrolment_begin,
    second_factor_enrolment_confirm,
    second_factor_recovery_codes_regenerate,
    second_factor_remove,
    second_factor_verify,
)

ENROLLING_SESSION_KEY = "opd_second_factor_enrolling"


class CodeForm(forms.Form):
    otp_code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


def _next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(name: str, request: HttpRequest) -> str:
    nxt = request.POST.get("next") or request.GET.get("next")
    url = reverse(name)
    return f"{url}?{urlencode({'next': nxt})}" if nxt else url


def _apply_errors(form: forms.Form, exc: DomainError) -> None:
    for field, texts in (exc.fields or {"otp_code": [exc.message]}).items():
        for message in texts:
            form.add_error(field if field in form.fields else None, message)


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if user.is_verified():  # type: ignore[attr-defined]
        return redirect(_next(request))
    if not is_enrolled(user):
        return redirect(_with_next("second-factor-enrol", request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = second_factor_verify(user=user, code=form.cleaned_data["otp_code"], request=request)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            otp_login(request, device)
            request.session.cycle_key()  # a new privilege, a new session id
            return redirect(_next(request))
    return render(request, "registration/second_factor.html", {"form": form, "next": _next(request)})


def _qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(
        scale=4, title="QR code to scan with your authenticator app", dark="#000", light="#fff"
    )


def _grouped_secret(device: TOTPDevice) -> str:
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if is_enrolled(user) and not user.is_verified():  # type: ignore[attr-defined]
        # Replacing an authenticator needs the current one (or a recovery code) first.
        return redirect(_with_next("second-factor", request))
    pending = TOTPDevice.objects.filter(
        pk=request.session.get(ENROLLING_SESSION_KEY) or 0, user=user, confirmed=False
    ).first()
    form = CodeForm(request.POST or None)
    if request.method == "POST" and pending is not None and form.is_valid():
        try:
            codes = second_factor_enrolment_confirm(
                user=user, device=pending, code=form.cleaned_data["otp_code"]
            )
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            request.session.pop(ENROLLING_SESSION_KEY, None)
            otp_login(request, pending)
            request.session.cycle_key()
            return render(
                request,
                "registration/recovery_codes.html",
                {"codes": codes, "next": _next(request), "new": True},
            )
    form.fields["otp_code"].help_text = "The 6-digit code the app shows once it has the key."
    if pending is None:
        pending = second_factor_enrolment_begin(user=user)
        request.session[ENROLLING_SESSION_KEY] = pending.pk
        if request.method == "POST":
            form = CodeForm()  # the code was for an enrolment that had expired: start afresh
            form.fields["otp_code"].help_text = "The 6-digit code the app shows once it has the key."
    context = {
        "form": form,
        "next": _next(request),
        "qr_svg": _qr_svg(pending),
        "secret": _grouped_secret(pending),
        "required": required_by_policy(user),
        "replacing": is_enrolled(user),
    }
    return render(request, "registration/second_factor_enrol.html", context)


@login_required
@require_http_methods(["GET"])
def security(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    enrolled = is_enrolled(user)
    context = {
        "enrolled": enrolled,
        "verified": user.is_verified(),  # type: ignore[attr-defined]
        "required": required_by_policy(user),
        "codes_left": RecoveryCode.objects.filter(device__user=user, used_at__isnull=True).count(),
    }
    return render(request, "registration/security.html", context)


def _needs_verified_session(request: HttpRequest) -> HttpResponse | None:
    if is_enrolled(request.user) and not request.user.is_verified():  # type: ignore[arg-type, union-attr]
        return redirect(_with_next("second-factor", request))
    return None


@login_required
@require_POST
def recovery_codes_renew(request: HttpRequest) -> HttpResponse:
    if (refusal := _needs_verified_session(request)) is not None:
        return refusal
    try:
        codes = second_factor_recovery_codes_regenerate(user=request.user)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("account-security")
    return render(
        request, "registration/recovery_codes.html", {"codes": codes, "next": reverse("account-security")}
    )


@login_required
@require_POST
def second_factor_turn_off(request: HttpRequest) -> HttpResponse:
    if (refusal := _needs_verified_session(request)) is not None:
        return refusal
    user: User = request.user  # type: ignore[assignment]
    try:
        second_factor_remove(actor=user, user=user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("account-security")
    messages.success(request, "Your second factor is off: sign-in asks for your password only.")
    return redirect("account-security")
