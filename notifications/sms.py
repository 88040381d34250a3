"""How many SMS segments a text takes: each one is billed, and a split message may arrive out of order.

GSM 03.38: a text made only of the GSM-7 default alphabet fits 160 characters in one segment (characters
of the extension table, such as € [ ] { } ~ ^ | \\, take two); a longer one is sent in parts of 153. One
character outside the alphabet (an emoji, most accented letters, Devanagari) sends the whole text as
UCS-2: 70 UTF-16 code units in one segment, 67 per part beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_length(text: str) -> SmsLength:
    if all(c in _BASIC or c in _EXTENSION for c in text):
        units = sum(2 if c in _EXTENSION else 1 for c in text)
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsLength(encoding=encoding, units=units, segments=max(segments, 1))


def sms_segments(text: str) -> int:
    """The number of segments `text` is sent in (1 for an empty text)."""
    return sms_length(text).segments
