"""Sign up, where each role lands after logging in, and the patient's profile."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications.services import contact_preference_set
from opd.core.errors import DomainError
from opd.core.models import Role, User
from opd.core.ratelimit import rate_limited
from opd.core.services import user_verify_email
from opd.core.tenancy import signed_in_user
from patients.services import patient_update

from ..forms import PreferencesForm, ProfileForm, SignupForm, add_domain_error
from ..selectors import contact_preference_of, split_appointments
from ..services import NO_SIGNUP_LINK, patient_register, signup_clinic, verification_email_send
from .common import PatientRequest, patient_required


@login_required
@require_GET
def after_login(request: HttpRequest) -> HttpResponse:
    """Where LOGIN_REDIRECT_URL points: each role to its own pages."""
    user = signed_in_user(request)
    if user.is_patient:
        upcoming, _ = split_appointments(user)
        return redirect("portal:appointments" if upcoming.exists() else "portal:find")
    if user.role == Role.ADMIN and not user.is_superuser:
        # Administrators run the organization: they start from its figures.
        return redirect("analytics:dashboard")
    if user.is_clinic_staff:
        return redirect("admin:index")
    if user.role == Role.DOCTOR:
        try:
            return redirect(reverse("queue:dashboard"))
        except NoReverseMatch:
            return redirect("home")
    return redirect("home")


@patient_required
@require_GET
def index(request: PatientRequest) -> HttpResponse:
    return redirect("portal:appointments")


@require_GET
def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up opens only from a clinic's own link (signup_at_clinic): here, say so and list nothing."""
    if request.user.is_authenticated:
        return redirect("portal:after-login")
    return render(request, "registration/signup_closed.html", {"message": NO_SIGNUP_LINK}, status=404)


@require_http_methods(["GET", "POST"])
@rate_limited("signup", subject="email")
def signup_at_clinic(request: HttpRequest, organization: str, clinic: str) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("portal:after-login")
    try:
        chosen = signup_clinic(organization_slug=organization, clinic_code=clinic)
    except DomainError as exc:
        return render(request, "registration/signup_closed.html", {"message": exc.message}, status=404)
    form = SignupForm(request.POST) if request.method == "POST" else SignupForm()
    if form.is_bound and form.is_valid():
        try:
            patient = patient_register(clinic=chosen, **form.service_arguments())
        except DomainError as exc:
            add_domain_error(form, exc, SignupForm.SERVICE_FIELDS)
        else:
            user = cast(User, patient.user)  # patient_register made it
            _send_verification(request, user)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome, {patient.first_name}. We sent a link to {user.email}: open it to confirm your "
                "address, then you can book.",
            )
            return redirect("portal:find")
    context = {"form": form, "clinic": chosen}
    return render(request, "registration/signup.html", context, status=400 if form.is_bound else 200)


def _send_verification(request: HttpRequest, user: User) -> None:
    verification_email_send(
        user=user,
        link_for=lambda token: request.build_absolute_uri(reverse("portal:verify-email", args=[token])),
    )


@require_GET
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the verification e-mail. It needs no sign-in: the signed token names the person."""
    try:
        user_verify_email(token=token)
    except DomainError as exc:
        return render(request, "registration/verify_email_failed.html", {"message": exc.message}, status=400)
    messages.success(request, "Thank you: your e-mail address is confirmed. You can book now.")
    return redirect("portal:find" if request.user.is_authenticated else "login")


@patient_required
@require_POST
@rate_limited("verification_resend")  # each one sends an e-mail: a loop must not turn it into a mailer
def verify_email_resend(request: PatientRequest) -> HttpResponse:
    user = signed_in_user(request)
    if user.email_verified_at is not None:
        messages.info(request, "Your e-mail address is already confirmed.")
    else:
        _send_verification(request, user)
        messages.success(request, f"We sent a new link to {user.email}.")
    return redirect("portal:find")


PROFILE_FIELDS = ("phone", "email", "address", "emergency_contact_name", "emergency_contact_phone")
PREFERENCE_FIELDS = ("email_enabled", "sms_enabled", "in_app_enabled", "preferred_channel")


@patient_required
@require_http_methods(["GET", "POST"])
def profile(request: PatientRequest) -> HttpResponse:
    """Two forms on one page, told apart by the `section` they post: contact details (patients'
    patient_update) and message preferences (notifications' contact_preference_set)."""
    patient = request.patient
    section = request.POST.get("section") if request.method == "POST" else None
    if request.method == "POST" and section not in ("contact", "preferences"):
        return redirect("portal:profile")
    if section == "contact":
        contact_form = ProfileForm(request.POST)
    else:
        contact_form = ProfileForm(initial={name: getattr(patient, name) for name in PROFILE_FIELDS})
    if section == "preferences":
        preferences_form = PreferencesForm(request.POST, prefix="prefs")
    else:
        preference = contact_preference_of(patient)
        initial = {name: getattr(preference, name) for name in PREFERENCE_FIELDS}
        preferences_form = PreferencesForm(initial=initial, prefix="prefs")
    status = 200
    if section:
        form = contact_form if section == "contact" else preferences_form
        status = 400
        if form.is_valid():
            try:
                if section == "contact":
                    patient_update(actor=request.user, patient=patient, **form.cleaned_data)
                else:
                    contact_preference_set(actor=request.user, patient=patient, **form.cleaned_data)
            except DomainError as exc:
                add_domain_error(form, exc)
                status = exc.status
            else:
                saved = "contact details" if section == "contact" else "message preferences"
                messages.success(request, f"Your {saved} are saved.")
                return redirect("portal:profile")
    context = {"patient": patient, "form": contact_form, "preferences_form": preferences_form}
    return render(request, "portal/profile.html", context, status=status)
