"""Patients' phone numbers in E.164 (#17): which region a typed number is read in, and the sweep that
brought numbers stored as typed into E.164 (the data migration and `manage.py phone_report` share it).

The region is the registering clinic's (Clinic.phone_region, or its time zone's country); a patient
registered with no clinic (the API allows it) is read in the region of the organization's first
clinic, the one it started with. A number written with "+" or "00" needs no region at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from opd.core import crypto
from opd.core.errors import ValidationFailed
from opd.core.phones import phone_to_e164, region_for_time_zone

# The patient's phone numbers: stored in E.164, read in the clinic's region when typed without a code.
PHONE_FIELDS = ("phone", "emergency_contact_phone")
BATCH = 500


def _clinic_region(clinic: Any) -> str:
    # Works on historical models too (a migration's Clinic has no properties).
    return clinic.phone_region or region_for_time_zone(clinic.time_zone)


def phone_region_for(clinic_model: Any, organization_id: int, clinic: Any | None) -> str:
    if clinic is not None:
        return _clinic_region(clinic)
    first = clinic_model.objects.filter(organization_id=organization_id).order_by("pk").first()
    return _clinic_region(first) if first is not None else ""


def normalise_phone_fields(fields: dict[str, Any], region: str, current: Any = None) -> None:
    """Put each phone number in `fields` into E.164 in place; ValidationFailed naming every field
    that is not a phone number. A value sent back exactly as stored is left alone, so a record kept as
    typed before #17 (see phone_report) can still have its other details edited."""
    errors: dict[str, str] = {}
    for name in PHONE_FIELDS:
        value = fields.get(name)
        if not isinstance(value, str) or (current is not None and value == getattr(current, name)):
            continue
        try:
            fields[name] = phone_to_e164(value, region)
        except ValidationError as exc:
            errors[name] = exc.messages[0]
    if errors:
        raise ValidationFailed("Check the phone number.", fields=errors, code="invalid")


@dataclass
class PhonePlan:
    """What the E.164 sweep would do to one patient: the new values (with the phone's blind index) and
    the fields it cannot read."""

    pk: int
    mrn: str
    organization_id: int
    updates: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def _rows(patient_model: Any) -> Iterator[Any]:
    last = 0
    while True:
        batch = list(
            patient_model.objects.filter(pk__gt=last)
            .select_related("registered_at_clinic")
            .only(
                "mrn",
                "organization",
                "registered_at_clinic__phone_region",
                "registered_at_clinic__time_zone",
                *PHONE_FIELDS,
            )
            .order_by("pk")[:BATCH]
        )
        if not batch:
            return
        yield from batch
        last = batch[-1].pk


def plan_phone_numbers(patient_model: Any, clinic_model: Any) -> Iterator[PhonePlan]:
    """For every patient with a number not in E.164: the E.164 form, or that it cannot be read. Reads
    only (the data migration writes what it yields; phone_report lists what cannot be read), in
    batches, through the encrypted fields; works on a migration's historical models."""
    first_clinic_regions: dict[int, str] = {}
    for patient in _rows(patient_model):
        clinic = patient.registered_at_clinic
        if clinic is not None:
            region = _clinic_region(clinic)
        else:
            if patient.organization_id not in first_clinic_regions:
                first_clinic_regions[patient.organization_id] = phone_region_for(
                    clinic_model, patient.organization_id, None
                )
            region = first_clinic_regions[patient.organization_id]
        plan = PhonePlan(pk=patient.pk, mrn=patient.mrn, organization_id=patient.organization_id)
        for name in PHONE_FIELDS:
            value = getattr(patient, name) or ""
            if not value:
                continue
            try:
                e164 = phone_to_e164(value, region)
            except ValidationError:
                plan.unreadable.append(name)
                continue
            if e164 != value:
                plan.updates[name] = e164
        if "phone" in plan.updates:
            # Written with update(), which skips pre_save: the blind index goes with the number.
            plan.updates["phone_index"] = crypto.blind_index("phone", plan.updates["phone"])
        if plan.updates or plan.unreadable:
            yield plan
