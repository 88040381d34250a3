"""Writes that only the portal makes. Everything else (booking, contact details) goes through the
services of the app that owns the data.

Self-registration and the organization: a clinic group runs one organization, so a new patient joins
the organization of the clinic they chose; without a choice, the single organization that has an
active clinic. With several such organizations a clinic must be chosen (the sign-up form then asks).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from opd.core.errors import Conflict, ValidationFailed
from opd.core.models import Clinic, Organization, Role, User
from opd.core.services import user_create
from patients.models import Patient, Sex
from patients.services import patient_create

DUPLICATE_EMAIL = (
    "An account with this email address already exists. Log in, or reset your password if you have "
    "forgotten it."
)


def signup_organizations() -> list[Organization]:
    """Organizations a patient could join: those with at least one active clinic."""
    return list(Organization.objects.filter(clinics__is_active=True).distinct().order_by("pk"))


def _organization_for(clinic: Clinic | None) -> Organization:
    if clinic is not None:
        if not clinic.is_active:
            raise ValidationFailed("This clinic is closed.", fields={"clinic": "Choose an open clinic."})
        return clinic.organization
    organizations = signup_organizations()
    if len(organizations) == 1:
        return organizations[0]
    if not organizations:
        raise ValidationFailed("Online registration is not open yet; please call the clinic.")
    raise ValidationFailed("Choose your clinic.", fields={"clinic": "Choose the clinic you will visit."})


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
    clinic: Clinic | None = None,
) -> Patient:
    """Create a patient's sign-in (role patient, username = email) and their Patient record together.

    The email address is the username, so it is unique across the whole installation: a second
    registration with it is refused whatever its case. The password goes through Django's validators.
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
