"""Serializers for the organization tree, and the input rules every app's API serializers share."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from rest_framework import serializers

from opd.core.errors import NotFound
from opd.core.models import ApiToken, Clinic, Department, Organization, User
from opd.core.tenancy import ScopedId

NOT_FOUND_CODE = "not_found"

if TYPE_CHECKING:
    # What StrictInputMixin is mixed into, so the checker knows its `fields` and super() calls.
    _SerializerBase = serializers.Serializer[Any]
else:
    _SerializerBase = object


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A body id looked up among the rows the requesting user may see.

    `scope` is a tenancy selector (user -> QuerySet). The `queryset` given to the constructor only tells
    the schema which model the id belongs to; lookups always go through the scope, so another tenant's id
    is indistinguishable from an unknown one.
    """

    default_error_messages = {
        NOT_FOUND_CODE: "Unknown {label}.",
        "incorrect_type": "Incorrect type. Expected an id, received {data_type}.",
    }

    def __init__(
        self, *, scope: Callable[[User], QuerySet], noun: str, deferred: bool = False, **kwargs: Any
    ):
        # deferred=True: the field answers a ScopedId (no query) and the service that takes it looks the row
        # up within the scope in its own read, answering 404 for an unknown id as this field would.
        self.scope = scope
        self.noun = noun
        self.deferred = deferred
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self.scope(self.context["request"].user)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            pk = int(data)
        except ValueError:
            self.fail("incorrect_type", data_type=type(data).__name__)
        queryset = self.get_queryset()
        if self.deferred:
            return ScopedId(pk=pk, scope=queryset)
        try:
            return queryset.get(pk=pk)
        except queryset.model.DoesNotExist:
            self.fail(NOT_FOUND_CODE, label=self.noun)


def _codes(errors: Any) -> set[str | None]:
    if isinstance(errors, list):
        return {getattr(e, "code", None) for e in errors}
    return {None}


class FieldsBuiltOnce:
    """A ModelSerializer whose fields depend on nothing but its class (not the request, not the instance):
    its fields are built from the model's metadata once per class and copied for each instance, as DRF
    copies declared fields, instead of read from the metadata again for every instance. A booking's
    answer nests five of them; building their fields was about a sixth of the booking's CPU."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            fields = super().get_fields()  # type: ignore[misc]  # the ModelSerializer after this mixin
            built = [(name, field, _holds_no_field(field)) for name, field in fields.items()]
            cls._fields_built_once = built  # type: ignore[attr-defined]  # a race builds it twice, alike
        return {
            name: _attribute_copy(field) if plain else copy.deepcopy(field) for name, field, plain in built
        }


def _holds_no_field(field: serializers.Field) -> bool:
    return not isinstance(field, serializers.BaseSerializer) and not any(
        isinstance(value, serializers.Field) for value in vars(field).values()
    )


def _attribute_copy(field: serializers.Field) -> serializers.Field:
    """A fresh copy of an unbound field that holds no other field. Such a field's state is what its
    constructor set plus what bind() sets on it, so a copy of its attributes is the field deepcopy()
    would make (DRF's deepcopy runs the constructor again on deep copies of its arguments: ~15 us a field,
    37 fields in a booking's answer). Fields holding fields (a nested serializer, a list's child) are
    deep-copied, each copy then binding its own."""
    clone = object.__new__(type(field))
    clone.__dict__.update(vars(field))
    return clone


class StrictInputMixin(_SerializerBase):
    """Input rules for write serializers.

    * A key the serializer does not know is refused (400, named), never silently dropped.
    * Body ids that cannot be found in the user's scope answer 404 naming the field, but only once the
      input is otherwise valid, so a client fixes its 400s first.
    """

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            unknown = {str(key): ["Unknown field."] for key in data if key not in self.fields}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if not isinstance(detail, dict):
                raise
            if not unknown and all(_codes(errs) == {NOT_FOUND_CODE} for errs in detail.values()):
                fields = {name: [str(e) for e in errs] for name, errs in detail.items()}
                first = next(iter(fields.values()))[0]
                raise NotFound(first, fields=fields) from exc
            raise serializers.ValidationError({**detail, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # The metaclass takes declared fields off the class, so this does not hide Serializer.fields.
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class ErrorSerializer(serializers.Serializer):
    """Every error answer: {"error": {"code", "message", "fields": {"field": ["message", ...]}}}."""

    error = ErrorDetailSerializer()


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]
        read_only_fields = fields


class ClinicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Clinic
        fields = [
            "id",
            "organization",
            "name",
            "code",
            "time_zone",
            "address",
            "phone",
            "phone_region",
            "email",
            "cancellation_cutoff_minutes",
            "is_active",
        ]
        read_only_fields = fields


class DepartmentSerializer(serializers.ModelSerializer):
    clinic_name = serializers.CharField(source="clinic.name", read_only=True)

    class Meta:
        model = Department
        fields = ["id", "clinic", "clinic_name", "name", "code", "is_active"]
        read_only_fields = fields


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)
    otp_code = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        write_only=True,
        help_text="The current code from the account's authenticator app, or an unused recovery code. "
        "Required when the account's sign-in needs a second factor (400 `second_factor_required` "
        "without it); an account that must have one and has none is refused 403 "
        "`second_factor_enrolment_required` until it enrols in a browser.",
    )


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown only this once.")
    expires_at = serializers.DateTimeField()


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it in the list: never the key, only its first characters."""

    current = serializers.SerializerMethodField(help_text="The token this request was made with.")

    class Meta:
        model = ApiToken
        fields = ["id", "prefix", "name", "created_at", "expires_at", "last_used_at", "current"]
        read_only_fields = fields

    def get_current(self, token: ApiToken) -> bool:
        request = self.context.get("request")
        return isinstance(getattr(request, "auth", None), ApiToken) and request.auth.pk == token.pk  # type: ignore[union-attr]


class TokensRevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many live tokens were revoked.")


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Open the websocket with `?ticket=<ticket>`, once.")
    expires_at = serializers.DateTimeField()
