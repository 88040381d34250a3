"""Writes that only the portal makes. Everything else (booking, contact details) goes through the
services of the app that owns the data.

Self-registration and the organization: a patient signs up through their clinic's own sign-up link
(/portal/c/<organization slug>/<clinic code>/signup/) and joins that clinic's organization; without
such a link there is no sign-up, so nobody picks an organization from a list. A new account must
confirm its e-mail address (opd.core user_verify_email) before it can book.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string

from opd.core.errors import Conflict, NotFound, ValidationFailed
from opd.core.models import Clinic, Organization, Role, User
from opd.core.services import email_verification_token, user_create
from patients.models import Patient, Sex
from patients.services import patient_create

DUPLICATE_EMAIL = (
    "An account with this email address already exists. Log in, or reset your password if you have "
    "forgotten it."
)


NO_SIGNUP_LINK = (
    "Online registration opens from your clinic's own sign-up link: ask your clinic for it, or call them."
)


def signup_clinic(*, organization_slug: str, clinic_code: str) -> Clinic:
    """The open clinic a sign-up link names; NotFound for a link that names none."""
    clinic = (
        Clinic.objects.select_related("organization")
        .filter(organization__slug=organization_slug, code=clinic_code, is_active=True)
        .first()
    )
    if clinic is None:
        raise NotFound(NO_SIGNUP_LINK, code="no_signup_link")
    return clinic


def _organization_for(clinic: Clinic) -> Organization:
    if not clinic.is_active:
        raise ValidationFailed("This clinic is closed.", fields={"clinic": "This clinic is closed."})
    return clinic.organization


def _email_taken(email: str) -> bool:
    return User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists()


def patient_register(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: dt.date,
    phone: str = "",
    sex: str = Sex.UNKNOWN,
    clinic: Clinic,
) -> Patient:
    """Create a patient's sign-in (role patient, username = email) and their Patient record together.

    The email address is the username, so it is unique across the whole installation: a second
    registration with it is refused whatever its case. The password goes through Django's validators.
    The account starts unverified: the caller sends the verification e-mail (verification_email_send).
    """
    email = User.objects.normalize_email(email).strip().lower()
    if _email_taken(email):
        raise ValidationFailed(DUPLICATE_EMAIL, fields={"email": DUPLICATE_EMAIL}, code="duplicate_email")
    organization = _organization_for(clinic)
    user = User(
        username=email,
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=Role.PATIENT,
        organization=organization,
    )
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            user = user_create(
                actor=None,
                username=email,
                password=password,
                role=Role.PATIENT,
                organization=organization,
                email=email,
                first_name=first_name,
                last_name=last_name,
                email_verified=False,
            )
            return patient_create(
                actor=user,
                organization=organization,
                registered_at_clinic=clinic,
                user=user,
                first_name=first_name,
                last_name=last_name,
                date_of_birth=date_of_birth,
                sex=sex,
                email=email,
                phone=phone,
                # Whoever signs up must not learn who else is registered (a name and birthday would
                # confirm a stranger's record): a look-alike is registered all the same and flagged
                # for reception to review and merge (patients.services.patient_merge).
                flag_possible_duplicate=True,
            )
    except ValidationFailed as exc:
        # Two sign-ups with one address at once: the unique username lets only one through, and
        # user_create names the username for the one that lost.
        if "username" in exc.fields and _email_taken(email):
            raise ValidationFailed(
                DUPLICATE_EMAIL, fields={"email": DUPLICATE_EMAIL}, code="duplicate_email"
            ) from exc
        raise
    except IntegrityError as exc:
        if _email_taken(email):
            raise ValidationFailed(
                DUPLICATE_EMAIL, fields={"email": DUPLICATE_EMAIL}, code="duplicate_email"
            ) from exc
        raise Conflict("The registration clashed with another change; please try again.") from exc


def verification_email_send(*, user: User, link_for: Callable[[str], str]) -> None:
    """E-mail `user` the link that confirms their address; `link_for` turns the signed token into the
    absolute address of the portal's verify page (the door knows its host)."""
    if user.email_verified_at is not None or not user.email:
        return
    link = link_for(email_verification_token(user=user))
    hours = settings.OPD_EMAIL_VERIFICATION_MAX_AGE // 3600
    context = {"user": user, "link": link, "hours": hours}
    send_mail(
        subject="Confirm your e-mail address",
        message=render_to_string("portal/emails/verify_email.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )
