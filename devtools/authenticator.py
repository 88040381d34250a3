"""What an authenticator app would show for a person's enrolled TOTP device: for the demo (`otp_code`,
`seed_demo`) and for tests, which sign in the way a person with a phone would."""

from __future__ import annotations

import time
from base64 import b32encode
from dataclasses import dataclass

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


@dataclass(frozen=True)
class Code:
    code: str
    seconds_left: int
    # False when this time step's code was already used to sign in (a code works once): the next step's.
    current: bool


def code_for(device: TOTPDevice, *, at: float | None = None) -> Code:
    """The code to type now: this time step's, or the next one's if this one was already spent."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    step_ends = device.t0 + (totp.t() + 1) * device.step
    if totp.t() > device.last_t:
        return Code(f"{totp.token():0{device.digits}d}", int(step_ends - totp.time), current=True)
    totp.time = step_ends
    return Code(f"{totp.token():0{device.digits}d}", int(step_ends - time.time()), current=False)


def key_of(device: TOTPDevice) -> str:
    """The base32 key an authenticator app takes when typed in."""
    return b32encode(device.bin_key).decode()
