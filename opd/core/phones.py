"""Phone numbers: parsed with a region, stored in E.164, shown national or international (#17).

A number typed at a desk ("07700 900123") means something only with a country: each clinic has a
default region (Clinic.phone_region, ISO 3166 alpha-2), and a number written with a "+" or an
international prefix ("00 44 ...") needs none. What is stored is E.164 ("+447700900123"): one form per
number, so SMS gateways get a country code and two spellings of one number are equal.

We accept a number libphonenumber calls *possible* (a right length for its country), not only *valid*
(inside a range known to be allocated): its metadata lags new allocations by months, and the ranges kept
for drama and documentation (07700 900xxx, which our own examples use) are "invalid" yet harmless. A
number that needs an area code to be dialled from elsewhere (IS_POSSIBLE_LOCAL_ONLY) is refused: it has
no E.164 form.
"""

from __future__ import annotations

import functools
from importlib import resources

import phonenumbers
from django.core.exceptions import ValidationError

INVALID_PHONE = "Enter a phone number with its area code, or in international form (+44 20 7946 0018)."


def validate_phone_region(value: str) -> None:
    if value and value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            f"“{value}” is not a country code with a phone numbering plan: use two capital letters, for "
            "example GB or IN."
        )


@functools.cache
def _zone_countries() -> dict[str, str]:
    # zone.tab (IANA, shipped in the tzdata package we already install for zoneinfo): one country per
    # zone, "GB" for Europe/London, "IN" for Asia/Kolkata. Zones with no country (UTC) are absent.
    # Links ("L Asia/Kolkata Asia/Calcutta" in tzdata.zi) take their target's country.
    files = resources.files("tzdata.zoneinfo")
    countries = {}
    for line in files.joinpath("zone.tab").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            countries[parts[2]] = parts[0]
    for line in files.joinpath("tzdata.zi").read_text(encoding="utf-8").splitlines():
        if line.startswith("L "):
            _, target, name = line.split()
            if target in countries:
                countries.setdefault(name, countries[target])
    return countries


def region_for_time_zone(time_zone: str) -> str:
    """The country of an IANA zone ("" for UTC and other zones of no country); links (Asia/Calcutta,
    GB) resolve to their canonical zone first."""
    region = _zone_countries().get(time_zone, "")
    return region if region in phonenumbers.SUPPORTED_REGIONS else ""


def phone_to_e164(value: str, region: str) -> str:
    """`value` in E.164, read with `region` when it has no country code; "" stays "". Raises
    ValidationError for text that is not a complete phone number."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(INVALID_PHONE) from exc
    if number.extension:
        raise ValidationError("Extensions cannot be stored: enter the number without one.")
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise ValidationError(INVALID_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(value: str, region: str = "") -> str:
    """For people: national form when the number is of `region` (the clinic's), international
    otherwise; anything that does not parse (a number kept as typed before #17) is shown as stored."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException:
        return value
    # By country calling code, not by allocated range: a number outside known ranges still has one.
    if region and number.country_code == phonenumbers.country_code_for_region(region):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
