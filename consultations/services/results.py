"""Results and records filed with a consultation, with an optional attachment in Django's storage."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from opd.core.audit import audit
from opd.core.errors import ValidationFailed
from opd.core.models import User
from opd.core.services import validate_model

from ..models import Consultation, RecordType, Result
from .common import SET_BY_SERVICE, check_owner

# settings.OPD_RESULT_ATTACHMENT_MAX_BYTES overrides it.
DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# Content type -> how its files begin. The content decides, not the name or the client's claim.
ATTACHMENT_SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


def result_is_abnormal(value: str, low: Decimal | None, high: Decimal | None) -> bool | None:
    """Outside the reference range? None when it cannot be said: a text value, or no range."""
    if low is None and high is None:
        return None
    try:
        number = Decimal((value or "").strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return (low is not None and number < low) or (high is not None and number > high)


def _sniff(upload: UploadedFile[Any]) -> str | None:
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for content_type, signatures in ATTACHMENT_SIGNATURES.items():
        if any(head.startswith(signature) for signature in signatures):
            return content_type
    return None


def _check_attachment(upload: UploadedFile[Any]) -> str:
    limit = getattr(settings, "OPD_RESULT_ATTACHMENT_MAX_BYTES", DEFAULT_ATTACHMENT_MAX_BYTES)
    if upload.size is not None and upload.size > limit:
        shown = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise ValidationFailed(
            "The attachment is too large.", fields={"attachment": f"The file is larger than {shown}."}
        )
    if not upload.size:
        raise ValidationFailed("The attachment is empty.", fields={"attachment": "The file is empty."})
    sniffed = _sniff(upload)
    declared = (getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if sniffed is None or (declared in ATTACHMENT_SIGNATURES and declared != sniffed):
        raise ValidationFailed(
            "The attachment must be a PDF, PNG or JPEG file.",
            fields={"attachment": "Only PDF, PNG and JPEG files are accepted."},
        )
    return sniffed


def result_create(
    *,
    actor: User,
    consultation: Consultation,
    test_name: str,
    record_type: str = RecordType.LAB_REPORT,
    value: str = "",
    unit: str = "",
    reference_low: Decimal | None = None,
    reference_high: Decimal | None = None,
    notes: str = "",
    attachment: UploadedFile[Any] | None = None,
) -> Result:
    """File a result with a consultation, draft or completed (lab reports arrive after the visit).

    The abnormal flag is computed from the value and the reference range. An attachment is checked
    (size, content) and stored through Django's storage before the row; if the row then fails, the
    file is removed again."""
    check_owner(actor, consultation)
    result = Result(
        organization_id=consultation.organization_id,
        clinic_id=consultation.clinic_id,
        consultation=consultation,
        patient_id=consultation.patient_id,
        recorded_by=actor,
        record_type=record_type,
        test_name=(test_name or "").strip(),
        value=(value or "").strip(),
        unit=(unit or "").strip(),
        reference_low=reference_low,
        reference_high=reference_high,
        notes=(notes or "").strip(),
    )
    result.is_abnormal = result_is_abnormal(result.value, reference_low, reference_high)
    if attachment is not None:
        result.attachment_content_type = _check_attachment(attachment)
        result.attachment_name = (attachment.name or "attachment").rsplit("/", 1)[-1][:255]
        result.attachment_size = attachment.size
        result.attachment = attachment
    validate_model(result, exclude=(*SET_BY_SERVICE, "recorded_by"))
    try:
        with transaction.atomic():
            result.save()
            audit(
                actor=actor,
                action="result.created",
                obj=result,
                organization_id=result.organization_id,
                consultation=consultation.pk,
            )
    except Exception:
        if result.attachment.name and attachment is not None:
            result.attachment.storage.delete(result.attachment.name)
        raise
    return result
