"""Helpers every app's services share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from ..errors import ValidationFailed
from ..models import AccessGrant, IdempotencyRecord


def validate_model(instance: models.Model, *, exclude: Iterable[str] | None = None) -> None:
    """Run the model's field validators and constraints; raise ValidationFailed naming each field."""
    try:
        instance.full_clean(exclude=list(exclude or []), validate_unique=True, validate_constraints=True)
    except ValidationError as exc:
        fields = {
            key if key != "__all__" else "non_field_errors": msgs for key, msgs in exc.message_dict.items()
        }
        first_field, first_msgs = next(iter(fields.items()))
        raise ValidationFailed(f"{first_field}: {first_msgs[0]}", fields=fields) from exc


def idempotency_records_purge(*, older_than: dt.timedelta, batch_size: int = 1000) -> int:
    """Delete stored Idempotency-Key answers older than `older_than`, in small batches so no long
    transaction holds the table. A client retrying after that gets its request evaluated afresh."""
    cutoff = timezone.now() - older_than
    removed = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return removed
        removed += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]


def access_grants_purge(*, batch_size: int = 1000) -> int:
    """Delete break-the-glass grants that have expired, in small batches. The reason and every read under
    a grant stay in the access log; the grant row only spared a clinician a second question."""
    removed = 0
    while True:
        ids = list(
            AccessGrant.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return removed
        removed += AccessGrant.objects.filter(pk__in=ids).delete()[0]


# The use cases, importable from one place: `from opd.core.services import clinic_update`. Imported last,
# as they use validate_model above.
from .organizations import (  # noqa: E402
    clinic_create,
    clinic_update,
    department_create,
    department_update,
    organization_create,
    organization_update,
    time_zone_planner_register,
    time_zone_planner_unregister,
)
from .second_factor import (  # noqa: E402
    second_factor_enrolment_begin,
    second_factor_enrolment_confirm,
    second_factor_recovery_codes_regenerate,
    second_factor_remove,
    second_factor_verify,
)
from .tokens import (  # noqa: E402
    TokenRefused,
    token_issue,
    token_revoke,
    token_use,
    tokens_revoke_all,
    ws_ticket_issue,
    ws_ticket_redeem,
)
from .users import (  # noqa: E402
    email_verification_token,
    membership_add,
    membership_remove,
    membership_set_nurse,
    user_change_role,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_password,
    user_signin_unlock,
    user_update,
    user_verify_email,
)

__all__ = [
    "TokenRefused",
    "access_grants_purge",
    "clinic_create",
    "clinic_update",
    "department_create",
    "department_update",
    "email_verification_token",
    "idempotency_records_purge",
    "membership_add",
    "membership_remove",
    "membership_set_nurse",
    "organization_create",
    "organization_update",
    "second_factor_enrolment_begin",
    "second_factor_enrolment_confirm",
    "second_factor_recovery_codes_regenerate",
    "second_factor_remove",
    "second_factor_verify",
    "time_zone_planner_register",
    "time_zone_planner_unregister",
    "token_issue",
    "token_revoke",
    "token_use",
    "tokens_revoke_all",
    "user_change_role",
    "user_create",
    "user_deactivate",
    "user_reactivate",
    "user_set_password",
    "user_signin_unlock",
    "user_update",
    "user_verify_email",
    "validate_model",
    "ws_ticket_issue",
    "ws_ticket_redeem",
]
