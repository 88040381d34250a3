"""The signed manage-booking link in confirmations, reminders and moves: it works without signing in.

The manage-booking token names one appointment and its patient (`<appointment id>.<patient id>`, base 62), signed
with the secret key under its own salt and timestamped (django.core.signing.TimestampSigner), so:
- a changed character, another appointment's id or a token of another salt fails the signature: 404;
- the token works until its appointment ends and at most OPD_MANAGE_LINK_MAX_AGE_DAYS after it was made:
  after that, 410 with a message saying so;
- an appointment that moved to another patient (a merge of duplicates) no longer answers to it: 404.
Holding the link is the permission, as with a password-reset link; it only ever reaches the one
appointment, and what it may do there is what the patient may do online (the cut-off still applies).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from opd.core.errors import DomainError, NotFound
from opd.core.links import absolute_url
from scheduling.models import Appointment

SALT = "opd.notifications.manage-booking"


class LinkExpired(DomainError):
    """The link was genuine but its time is over (HTTP 410 Gone)."""

    code = "link_expired"
    status = 410


# HMAC-SHA256 truncated to 22 base64 characters (132 bits): RFC 2104 section 5 allows truncation to
# half the output and no less than 80 bits. The 21 characters saved keep the link (and so the SMS that
# carries it) to one segment; 132 bits are still far beyond guessing through a rate-limited door.
SIGNATURE_CHARS = 22


class _ShortTimestampSigner(signing.TimestampSigner):
    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        # unsign() compares with this too, so both sides use the truncated form.
        return super().signature(value, key)[:SIGNATURE_CHARS]


def _signer() -> signing.TimestampSigner:
    return _ShortTimestampSigner(salt=SALT)


def manage_token(appointment: Appointment) -> str:
    # Base 62 ids (as the timestamp is) keep the link short enough for a one-segment SMS.
    return _signer().sign(
        f"{signing.b62_encode(appointment.pk)}.{signing.b62_encode(appointment.patient_id)}"
    )


def manage_url(appointment: Appointment) -> str:
    """The absolute manage-booking address of `appointment`, for a message."""
    return absolute_url(reverse("manage:page", args=[manage_token(appointment)]))


NOT_FOUND = "This link is not valid. Use the newest message from the clinic, or call them."
EXPIRED = (
    "This link has expired: manage links work until the appointment is over. "
    "Sign in to the portal or call the clinic."
)


def appointment_for_manage_token(token: str, *, now: dt.datetime | None = None) -> Appointment:
    """The appointment a genuine, unexpired token names (with clinic, department, doctor, patient).
    NotFound for anything forged, altered or aimed at another appointment; LinkExpired when over."""
    max_age = dt.timedelta(days=settings.OPD_MANAGE_LINK_MAX_AGE_DAYS)
    try:
        value = _signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired(EXPIRED) from exc
    except signing.BadSignature as exc:
        raise NotFound(NOT_FOUND, code="invalid_link") from exc
    appointment_b62, _, patient_b62 = value.partition(".")
    if not (appointment_b62.isalnum() and patient_b62.isalnum()):
        raise NotFound(NOT_FOUND, code="invalid_link")
    appointment = (
        Appointment.objects.select_related("clinic", "department", "doctor__user", "patient")
        .filter(pk=signing.b62_decode(appointment_b62), patient_id=signing.b62_decode(patient_b62))
        .first()
    )
    if appointment is None:
        raise NotFound(NOT_FOUND, code="invalid_link")
    if appointment.end <= (now or timezone.now()):
        raise LinkExpired(EXPIRED)
    return appointment
