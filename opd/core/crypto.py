"""Encryption at rest: AES-256-GCM for fields and files, HMAC-SHA256 blind indexes for equality search.

Why AES-GCM with a key id rather than MultiFernet: every value names the key that sealed it (the first
8 hex digits of a hash of the key), so `rotate_keys` re-encrypts exactly the values that are not under
the current key without decrypting the rest, a second run finds nothing to do, and a value sealed with
a key that is no longer configured fails with a message naming that key id. MultiFernet has to try each
key in turn and re-encrypts every value on every rotation. GCM also authenticates a context (the model
and field, as associated data), so a ciphertext copied into another column does not decrypt, and its
tokens are shorter than Fernet's (no timestamp, no CBC padding).

Text values are stored as ``e1:<key id>:<base64url(nonce + ciphertext + tag)>``; files as
``OPDENC1`` + key id (4 bytes) + nonce (12) + ciphertext + tag. An empty value stays empty (the database's
"has text" constraints keep working; that a field is blank is not hidden).

Keys come from settings (the environment): OPD_ENCRYPTION_KEYS, a comma-separated list of 32-byte keys in
URL-safe base64, the first encrypts and all decrypt; OPD_BLIND_INDEX_KEY (same format) keys the blind
indexes and OPD_BLIND_INDEX_KEY_PREVIOUS, while indexes are recomputed after changing it, is searched
too. With neither set and settings.OPD_DEVELOPMENT_KEY_FILE set (the embedded default), keys are
generated into that file on first use. This module imports no models: settings may use it to validate.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

TOKEN_PREFIX = "e1:"  # noqa: S105  # a format marker, not a secret
_TOKEN = re.compile(r"e1:([0-9a-f]{8}):([A-Za-z0-9_-]+)")
FILE_MAGIC = b"OPDENC1"
_FILE_CONTEXT = b"opd.file"
_NONCE_BYTES = 12
BLIND_INDEX_LENGTH = 32  # hex digits: 128 bits of HMAC-SHA256
PHONE_TAIL_DIGITS = 7


class DecryptionError(Exception):
    """A stored value that cannot be decrypted: altered, truncated, plaintext, or sealed with an unknown key.

    Raised, never swallowed: a clinical note that silently reads as empty is worse than an error page."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def parse_key(text: str, setting: str) -> bytes:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ImproperlyConfigured(
            f"{setting} must hold 32-byte keys in URL-safe base64 (44 characters); generate one with "
            "python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'."
        )
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"opd-encryption-key-id\0" + key).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    current_id: str
    ciphers: dict[str, AESGCM]
    blind_keys: tuple[bytes, ...]  # the current key first, then the previous one while indexes move


def build_keyring(encryption_keys: list[str], blind_key: str, blind_key_previous: str = "") -> Keyring:
    """Parse and check the configured keys; ImproperlyConfigured names the setting at fault."""
    if not [k for k in encryption_keys if k.strip()]:
        raise ImproperlyConfigured(
            "OPD_ENCRYPTION_KEYS is not set: sensitive fields and attachments are encrypted at rest. Set it "
            "to a comma-separated list of keys (the first encrypts), and OPD_BLIND_INDEX_KEY."
        )
    if not blind_key.strip():
        raise ImproperlyConfigured("OPD_BLIND_INDEX_KEY is not set: phone and insurance search need it.")
    keys = [parse_key(k, "OPD_ENCRYPTION_KEYS") for k in encryption_keys if k.strip()]
    ids = [key_id(k) for k in keys]
    if len(set(ids)) != len(ids):
        raise ImproperlyConfigured("OPD_ENCRYPTION_KEYS lists the same key twice.")
    blind = [parse_key(blind_key, "OPD_BLIND_INDEX_KEY")]
    if blind_key_previous.strip():
        blind.append(parse_key(blind_key_previous, "OPD_BLIND_INDEX_KEY_PREVIOUS"))
    if any(b in keys for b in blind):
        raise ImproperlyConfigured("OPD_BLIND_INDEX_KEY must differ from every OPD_ENCRYPTION_KEYS key.")
    return Keyring(
        current_id=ids[0],
        ciphers={i: AESGCM(k) for i, k in zip(ids, keys, strict=True)},
        blind_keys=tuple(blind),
    )


def _development_keys(path: Path) -> tuple[list[str], str]:
    """The embedded default's keys, generated into `path` (mode 0600) the first time, and said so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(f"OPD_ENCRYPTION_KEYS={generate_key()}\nOPD_BLIND_INDEX_KEY={generate_key()}\n")
        sys.stderr.write(
            f"Generated development encryption keys in {path} (first run). The data of this checkout is "
            "encrypted with them: keep the file with the database. Production sets OPD_ENCRYPTION_KEYS "
            "and OPD_BLIND_INDEX_KEY instead.\n"
        )
    values = dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return values.get("OPD_ENCRYPTION_KEYS", "").split(","), values.get("OPD_BLIND_INDEX_KEY", "")


@functools.cache
def keyring() -> Keyring:
    from django.conf import settings

    keys = list(getattr(settings, "OPD_ENCRYPTION_KEYS", []) or [])
    blind = getattr(settings, "OPD_BLIND_INDEX_KEY", "") or ""
    dev_file = getattr(settings, "OPD_DEVELOPMENT_KEY_FILE", None)
    if not keys and not blind and dev_file:
        keys, blind = _development_keys(Path(dev_file))
    return build_keyring(keys, blind, getattr(settings, "OPD_BLIND_INDEX_KEY_PREVIOUS", "") or "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt(plaintext: str, context: str) -> str:
    ring = keyring()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = ring.ciphers[ring.current_id].encrypt(nonce, plaintext.encode(), context.encode())
    return f"{TOKEN_PREFIX}{ring.current_id}:{_b64(nonce + sealed)}"


def token_key_id(value: str) -> str | None:
    """The key id of a token, or None when the value is not a token at all."""
    match = _TOKEN.fullmatch(value)
    return match.group(1) if match else None


def decrypt(token: str, context: str) -> str:
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise DecryptionError(
            f"{context} holds a value that is not an encrypted token (plaintext or corrupt)."
        )
    kid, body = match.groups()
    cipher = keyring().ciphers.get(kid)
    if cipher is None:
        raise DecryptionError(
            f"{context} was encrypted with key {kid}, which OPD_ENCRYPTION_KEYS no longer lists."
        )
    raw = _unb64(body)
    try:
        return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError(
            f"{context} does not decrypt: the stored value was altered or truncated."
        ) from exc


def needs_rotation(token: str) -> bool:
    kid = token_key_id(token)
    return kid is not None and kid != keyring().current_id


def encrypt_bytes(data: bytes) -> bytes:
    ring = keyring()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = ring.ciphers[ring.current_id].encrypt(nonce, data, _FILE_CONTEXT)
    return FILE_MAGIC + bytes.fromhex(ring.current_id) + nonce + sealed


def blob_key_id(blob: bytes) -> str | None:
    if not blob.startswith(FILE_MAGIC) or len(blob) < len(FILE_MAGIC) + 4 + _NONCE_BYTES + 16:
        return None
    return blob[len(FILE_MAGIC) : len(FILE_MAGIC) + 4].hex()


def decrypt_bytes(blob: bytes, name: str = "file") -> bytes:
    kid = blob_key_id(blob)
    if kid is None:
        raise DecryptionError(f"{name} is not an encrypted file (plaintext or corrupt).")
    cipher = keyring().ciphers.get(kid)
    if cipher is None:
        raise DecryptionError(
            f"{name} was encrypted with key {kid}, which OPD_ENCRYPTION_KEYS no longer lists."
        )
    start = len(FILE_MAGIC) + 4
    try:
        return cipher.decrypt(blob[start : start + _NONCE_BYTES], blob[start + _NONCE_BYTES :], _FILE_CONTEXT)
    except InvalidTag as exc:
        raise DecryptionError(f"{name} does not decrypt: the file was altered or truncated.") from exc


# Blind indexes. A normalizer turns a value into what equality means for its kind; "" is not indexed.
def _phone_tail(value: str) -> str:
    # The last digits, so "+44 20 7946 0018", "020 7946 0018" and "7946 0018" find one number.
    return re.sub(r"\D", "", value or "")[-PHONE_TAIL_DIGITS:]


def _identifier(value: str) -> str:
    # Policy and national numbers: case, spaces, dots and dashes are how people write them, not part of them.
    return re.sub(r"[^0-9A-Z]", "", (value or "").upper())


def _address(value: str) -> str:
    # A message's recipient: an e-mail address (case does not matter), or a phone number (its tail). Text
    # that is neither (an MRN, a name) is not indexed, so it cannot match a phone number by accident.
    value = (value or "").strip()
    if "@" in value:
        return value.lower()
    if any(ch.isalpha() for ch in value) or len(re.sub(r"\D", "", value)) < PHONE_TAIL_DIGITS:
        return ""
    return "tel:" + _phone_tail(value)


NORMALIZERS = {"phone": _phone_tail, "identifier": _identifier, "address": _address}


def _hmac(key: bytes, kind: str, normalized: str) -> str:
    digest = hmac.new(key, f"{kind}\0{normalized}".encode(), hashlib.sha256).hexdigest()
    return digest[:BLIND_INDEX_LENGTH]


def blind_index(kind: str, value: str) -> str:
    """The stored index of `value` under the current blind-index key ("" for a blank value)."""
    normalized = NORMALIZERS[kind](value)
    return _hmac(keyring().blind_keys[0], kind, normalized) if normalized else ""


def blind_index_candidates(kind: str, value: str) -> list[str]:
    """What a search compares with: the current key's index, and the previous key's while rows move."""
    normalized = NORMALIZERS[kind](value)
    if not normalized:
        return []
    return [_hmac(key, kind, normalized) for key in keyring().blind_keys]


def _reset(**kwargs: object) -> None:
    if str(kwargs.get("setting", "")).startswith("OPD_"):
        keyring.cache_clear()


def connect_setting_changed() -> None:
    # override_settings in tests swaps keys; the cached keyring must follow.
    from django.core.signals import setting_changed

    setting_changed.connect(_reset, dispatch_uid="opd.core.crypto.reset")
