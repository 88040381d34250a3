"""File storage that encrypts what it writes (opd.core.crypto) and keeps it private to the server's user.

Files are created 0600 in directories created 0700, and sealed with AES-GCM under the current key;
opening one gives the plaintext, so the scoped download view streams decrypted bytes and nothing else
does (the web server never serves these files). A file is read whole into memory: attachments are
capped in size (OPD_RESULT_ATTACHMENT_MAX_BYTES).
"""

from __future__ import annotations

import io
import os
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from . import crypto


class EncryptedFileSystemStorage(FileSystemStorage):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)

    def _save(self, name: str, content: Any) -> str:
        content.seek(0)
        return super()._save(name, ContentFile(crypto.encrypt_bytes(content.read())))  # type: ignore[misc]  # not in the stubs

    def _open(self, name: str, mode: str = "rb") -> File:
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("Encrypted files are written through save(), not opened for writing.")
        with open(self.path(name), "rb") as stored:
            blob = stored.read()
        return File(io.BytesIO(crypto.decrypt_bytes(blob, name)), name=name)

    def read_raw(self, name: str) -> bytes:
        with open(self.path(name), "rb") as stored:
            return stored.read()

    def rewrite(self, name: str, blob: bytes) -> None:
        """Replace a file's bytes atomically (rename over it), keeping it 0600: used by key rotation."""
        path = self.path(name)
        tmp = f"{path}.rotating"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


_storage = EncryptedFileSystemStorage()


def encrypted_storage() -> EncryptedFileSystemStorage:
    """A callable for FileField(storage=...), so migrations record a reference, not the instance."""
    return _storage
