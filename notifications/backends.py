"""Delivery backends: one small interface, one class per way out.

    backend.send(message) -> provider message id (str), or raises DeliveryError

A backend raises DeliveryError(permanent=True) when trying again cannot help (an address the provider
refuses, a 4xx from the SMS API); anything else it raises is taken as transient and retried with backoff.

Every message carries `message_id`, the same on every attempt of one notification. Providers that honour
it (the SMS API's Idempotency-Key header, the e-mail Message-ID) can drop the duplicate that the one
unavoidable crash window produces: the provider accepted the message and the worker died before it
could record that (see services.delivery).

- Email: Django's e-mail backend (EMAIL_URL: SMTP in production, console or file in the embedded default).
- SMS: OPD_SMS_BACKEND, FileSmsBackend by default (JSON lines in OPD_SMS_FILE_DIR, for the embedded
  default and tests), HttpSmsBackend for a real provider (OPD_SMS_HTTP_URL, OPD_SMS_HTTP_TOKEN).
- In-app: the channel layer, to the recipient's open pages (notifications.consumers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils import timezone
from django.utils.module_loading import import_string

from opd.core.channel_send import group_send

from . import conf
from .models import Channel, Notification, Status

# Longest a test may hold the file SMS backend (OPD_SMS_FILE_HOLD_PATH) before it sends anyway.
HOLD_MAX_SECONDS = 120


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    message_id: str
    channel: str
    kind: str
    to: str
    subject: str
    body: str
    body_html: str = ""
    user_id: int | None = None
    created_at: dt.datetime | None = None


class Backend(Protocol):
    def send(self, message: OutgoingMessage) -> str: ...


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open pages."""
    return f"notifications.user.{user_id}"


class EmailBackend:
    """Through django.core.mail, so EMAIL_BACKEND / EMAIL_URL decide where mail goes."""

    def send(self, message: OutgoingMessage) -> str:
        from_email = settings.DEFAULT_FROM_EMAIL
        domain = from_email.rpartition("@")[2].strip(" >") or "opd.local"
        message_id = f"<{message.message_id}@{domain}>"
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=from_email,
            to=[message.to],
            headers={"Message-ID": message_id},
            # SMTP without a timeout can hang a worker past its lease; the other backends ignore it.
            connection=get_connection(
                timeout=getattr(settings, "EMAIL_TIMEOUT", None) or conf.email_timeout()
            ),
        )
        if message.body_html:
            email.attach_alternative(message.body_html, "text/html")
        try:
            accepted = email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"The mail server refused the address: {exc}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx: the server will say the same next time; 4xx: try again later.
            raise DeliveryError(
                f"The mail server answered {exc.smtp_code}: {exc.smtp_error!r}",
                permanent=exc.smtp_code >= 500,
            ) from exc
        if accepted != 1:
            raise DeliveryError("The mail backend accepted no message.")
        return message_id


class FileSmsBackend:
    """Appends one JSON line per SMS to <OPD_SMS_FILE_DIR>/sms-YYYY-MM-DD.jsonl.

    Each line is written with one write() on a file opened for appending, so lines from several workers
    never interleave. OPD_SMS_FILE_HOLD_PATH exists for tests only: while that file exists, a send waits
    (up to two minutes), which lets a test kill a worker in the middle of a send.
    """

    def send(self, message: OutgoingMessage) -> str:
        hold = conf.sms_file_hold_path()
        if hold is not None:
            deadline = time.monotonic() + HOLD_MAX_SECONDS
            while hold.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        folder = conf.sms_file_dir()
        folder.mkdir(parents=True, exist_ok=True)
        now = timezone.now()
        line = json.dumps(
            {
                "message_id": message.message_id,
                "to": message.to,
                "from": conf.sms_sender(),
                "body": message.body,
                "kind": message.kind,
                "at": now.isoformat(),
            },
            ensure_ascii=False,
        )
        path = folder / f"sms-{now:%Y-%m-%d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return message.message_id


class HttpSmsBackend:
    """POSTs {"to", "from", "body", "reference"} as JSON to OPD_SMS_HTTP_URL with a bearer token.

    The reference doubles as the Idempotency-Key header. A 2xx is success (the provider's "id" is kept
    when it sends one); 4xx other than 408 and 429 is permanent; 5xx, 408, 429 and network errors are
    transient.
    """

    def send(self, message: OutgoingMessage) -> str:
        url = conf.sms_http_url()
        if not url.startswith(("https://", "http://")):
            raise DeliveryError("OPD_SMS_HTTP_URL is not set to an http(s) URL.", permanent=True)
        payload = json.dumps(
            {
                "to": message.to,
                "from": conf.sms_sender(),
                "body": message.body,
                "reference": message.message_id,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {conf.sms_http_token()}",
                "Idempotency-Key": message.message_id,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=conf.sms_http_timeout()) as response:  # noqa: S310
                raw = response.read(65536)
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
            raise DeliveryError(f"The SMS provider answered HTTP {exc.code}.", permanent=permanent) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"The SMS provider could not be reached: {reason}") from exc
        try:
            provider_id = str(json.loads(raw or b"{}").get("id") or "")
        except (ValueError, AttributeError):
            provider_id = ""
        return provider_id or message.message_id


class InAppBackend:
    """To every open page of the recipient: a group_send to their user group (notifications.consumers).

    Pages that are closed miss the push; the message stays listed under /api/v1/notifications/.
    """

    def send(self, message: OutgoingMessage) -> str:
        if message.user_id is None:
            raise DeliveryError("An in-app message needs a user.", permanent=True)
        if get_channel_layer() is None:
            raise DeliveryError("No channel layer is configured.", permanent=True)
        # The row is still "sending" while we push it: it counts as unread from this moment on.
        unread = inbox_unread_excluding(message.user_id, message.notification_id) + 1
        group_send(
            user_group(message.user_id),
            {
                "type": "notification.message",
                "notification": {
                    "type": "notification",
                    "id": message.notification_id,
                    "kind": message.kind,
                    "subject": message.subject,
                    "body": message.body,
                    "created_at": message.created_at.isoformat() if message.created_at else None,
                    "unread_count": unread,
                },
            },
        )
        return message.message_id


def inbox_unread_excluding(user_id: int, notification_id: int) -> int:
    return (
        Notification.objects.filter(
            user_id=user_id, channel=Channel.IN_APP, status=Status.SENT, read_at__isnull=True
        )
        .exclude(pk=notification_id)
        .count()
    )


def push_unread_count(user_id: int, count: int) -> None:
    """Tell the user's open pages their unread count (after messages were marked read elsewhere)."""
    group_send(user_group(user_id), {"type": "notification.unread", "unread_count": count})


def backend_for(channel: str) -> Backend:
    if channel == Channel.EMAIL:
        return EmailBackend()
    if channel == Channel.SMS:
        return import_string(conf.sms_backend_path())()
    if channel == Channel.IN_APP:
        return InAppBackend()
    raise DeliveryError(f"Unknown channel {channel!r}.", permanent=True)
