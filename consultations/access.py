"""Who may open which patient's clinical record, and the access log of every read (issue #15).

The care relationship. A doctor has one with a patient when
  * the doctor has an appointment with the patient (booked, checked in, in consultation, completed or a
    no-show; not cancelled) at one of the clinics where the doctor works, starting at most
    OPD_CARE_RELATIONSHIP_MONTHS (12) months ago or later: today's queue and upcoming visits included;
  * or, for one record, the doctor wrote it (the consultation's doctor, the prescriber, who filed a result).
Without one, a doctor opening a patient's clinical record (consultation, vitals, notes, prescriptions,
results and their attachments, the history timeline, the printable prescription, archived clinical
content) is refused until they state a reason: 403 `reason_required` naming the field `reason` on the
API (send `?reason=...` or the `X-Access-Reason` header), a form on pages. The reason opens that
patient's record to that doctor for OPD_BREAK_GLASS_MINUTES (30) minutes (an AccessGrant row), is
written in the access log (`record.break_glass`, flagged for an administrator's review) and in the
`reason` column of every read under it.

Lists show only the records of patients in the doctor's care (or opened by a reason): a list is not a
way round the question. Patients reading their own record, staff and admins reading care notes and
superusers are not asked (the rule is about clinicians reaching beyond their patients); their reads are
logged all the same.

The access log: every door that shows clinical content calls `log_reads` with the rows it shows, one
access row per record (`record.viewed`, `record.downloaded`, `record.printed`, `record.exported`), buffered
into one INSERT per request by opd.core.audit.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from opd.core.audit import record_access
from opd.core.errors import PermissionDenied
from opd.core.models import AccessGrant, Role, User
from opd.core.tenancy import clinic_ids_for
from scheduling.models import Appointment, AppointmentStatus

from .services.access import access_break_glass

VIEWED, DOWNLOADED, PRINTED, EXPORTED = (
    "record.viewed",
    "record.downloaded",
    "record.printed",
    "record.exported",
)
REASON_REQUIRED = "reason_required"
REASON_PARAM = "reason"
REASON_HEADER = "X-Access-Reason"


def needs_care_relationship(user: User) -> bool:
    """The rule binds clinicians (doctors); superusers, patients, staff and admins are not asked."""
    return bool(user.is_authenticated and not user.is_superuser and user.role == Role.DOCTOR)


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same wall-clock day `months` earlier (the month's last day where it is shorter)."""
    years, month0 = divmod(moment.month - 1 - months, 12)
    year, month = moment.year + years, month0 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _care_patient_ids(user: User, now: dt.datetime) -> QuerySet[Appointment, Any]:
    since = months_before(now, settings.OPD_CARE_RELATIONSHIP_MONTHS)
    qs = Appointment.objects.filter(
        doctor__user=user,
        organization_id=user.organization_id,  # type: ignore[misc]  # no organization: matches no row
        start__gte=since,
    ).exclude(status=AppointmentStatus.CANCELLED)
    ids = clinic_ids_for(user)
    if ids is not None:
        qs = qs.filter(clinic_id__in=ids)
    return qs.values("patient_id")


def _granted_patient_ids(user: User, now: dt.datetime) -> QuerySet[AccessGrant, Any]:
    return AccessGrant.objects.filter(user=user, expires_at__gt=now).values("patient_id")


def in_care(qs: QuerySet[Any], user: User, *, author: str = "doctor__user") -> QuerySet[Any]:
    """The rows of `qs` (clinical rows with a `patient`) that the user may see in a list: for a doctor,
    those of patients in their care or opened by a reason, and those they wrote (`author`)."""
    if not needs_care_relationship(user):
        return qs
    now = timezone.now()
    return qs.filter(
        Q(patient_id__in=_care_patient_ids(user, now))
        | Q(patient_id__in=_granted_patient_ids(user, now))
        | Q(**{author: user})
    )


def has_care_relationship(user: User, patient_id: int) -> bool:
    return _care_patient_ids(user, timezone.now()).filter(patient_id=patient_id).exists()


def live_grant(user: User, patient_id: int) -> AccessGrant | None:
    return (
        AccessGrant.objects.filter(user=user, patient_id=patient_id, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )


def reason_required(patient_id: int) -> PermissionDenied:
    minimum = settings.OPD_BREAK_GLASS_REASON_MIN_LENGTH
    return PermissionDenied(
        "You have no care relationship with this patient (no appointment with them in the last "
        f"{settings.OPD_CARE_RELATIONSHIP_MONTHS} months). State why you open the record: it is logged "
        "and reviewed.",
        code=REASON_REQUIRED,
        fields={
            REASON_PARAM: f"Required to open patient {patient_id}'s record: at least {minimum} characters, "
            f"as the `{REASON_PARAM}` parameter or the {REASON_HEADER} header."
        },
    )


def open_record(
    user: User,
    *,
    patient_id: int,
    organization_id: int,
    clinic_id: int | None,
    reason: str = "",
    author_id: int | None = None,
) -> str:
    """Let the user open the patient's record, or refuse (403 reason_required; 400 for a reason too
    short). Answers the reason the access stands on: "" within a care relationship, else the reason
    given now or earlier within the grant's window. `author_id`: the user who wrote the record."""
    if not needs_care_relationship(user) or author_id == user.pk:
        return ""
    if has_care_relationship(user, patient_id):
        return ""
    grant = live_grant(user, patient_id)
    if grant is not None:
        return grant.reason
    if not reason.strip():
        raise reason_required(patient_id)
    grant = access_break_glass(
        actor=user,
        patient_id=patient_id,
        organization_id=organization_id,
        clinic_id=clinic_id,
        reason=reason,
    )
    return grant.reason


def stated_reason(request: HttpRequest) -> str:
    """The reason an API client sends: `?reason=` or the X-Access-Reason header."""
    return request.GET.get(REASON_PARAM) or request.headers.get(REASON_HEADER) or ""


def patient_of(row: Any) -> int | None:
    if hasattr(row, "patient_id"):
        return row.patient_id
    return None


def log_reads(user: User, action: str, rows: Iterable[Any], *, reason: str = "", **data: Any) -> None:
    """One access row per record shown (buffered: one INSERT for the request). Each row must know its
    organization, clinic and patient (every clinical model does)."""
    for row in rows:
        record_access(
            actor=user,
            action=action,
            obj=row,
            organization_id=row.organization_id,
            clinic_id=getattr(row, "clinic_id", None),
            patient_id=patient_of(row),
            reason=reason,
            **data,
        )
