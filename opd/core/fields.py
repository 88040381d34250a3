"""Model fields for encryption at rest (opd.core.crypto): encrypted text and keyed blind indexes.

An encrypted field is stored as a TEXT column whatever its Python type (a token is about 1.4 times the
text plus 40 characters), decrypts when read from the database and encrypts when saved (also through
update() and bulk_create()). Its max_length still limits what a person may type. It cannot be searched:
any lookup but `isnull` or equality with "" is refused loudly, instead of comparing with ciphertext and
finding nothing. Equality search goes through a BlindIndexField computed from it on save.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact

from . import crypto


class _BlankOnlyExact(Exact):
    def get_prep_lookup(self) -> Any:
        if self.rhs not in ("", None) and not hasattr(self.rhs, "resolve_expression"):
            raise FieldError(
                f"{self.lhs.target.model._meta.label}.{self.lhs.target.name} is encrypted: it can only be "
                "compared with the empty string; search its blind index instead."
            )
        return super().get_prep_lookup()


class EncryptedMixin:
    encrypted = True

    def get_internal_type(self) -> str:
        return "TextField"

    def encryption_context(self) -> str:
        # Authenticated with the ciphertext: a token copied into another column does not decrypt.
        return f"{self.model._meta.label_lower}.{self.name}"  # type: ignore[attr-defined]

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.decrypt(value, self.encryption_context())

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        value = self.get_prep_value(value)  # type: ignore[attr-defined]
        if value is None or value == "" or hasattr(value, "resolve_expression"):
            return value
        return crypto.encrypt(str(value), self.encryption_context())

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "exact":
            return _BlankOnlyExact
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        return None  # Django then raises FieldError: "Unsupported lookup ..."

    def get_transform(self, lookup_name: str) -> Any:
        return None


class EncryptedCharField(EncryptedMixin, models.CharField):
    pass


class EncryptedTextField(EncryptedMixin, models.TextField):
    pass


class EncryptedEmailField(EncryptedMixin, models.EmailField):
    pass


class BlindIndexField(models.CharField):
    """A keyed HMAC of another field's normalized value (crypto.NORMALIZERS[kind]), set on every save.

    Saves with update_fields must list it next to its source."""

    def __init__(self, *args: Any, source: str, kind: str, **kwargs: Any) -> None:
        self.source, self.kind = source, kind
        kwargs.setdefault("max_length", crypto.BLIND_INDEX_LENGTH)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, kind=self.kind)
        for key in ("max_length", "blank", "default", "editable"):
            kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = crypto.blind_index(self.kind, getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, value)
        return value


def encrypted_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]


def blind_index_fields(model: type[models.Model]) -> list[BlindIndexField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)]
