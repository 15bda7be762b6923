"""Phone numbers through `phonenumbers`: E.164 normalisation and display forms."""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberDesc,
    PhoneNumberFormat,
)

MAX_INPUT = 64
#: Plain NANP forms (`+12125550123`, `12125550123`, `2125550123`): most pings send one.
_PLAIN_NANP = re.compile(r"(?:\+?1)?([2-9]\d\d[2-9]\d{6})")


def to_e164(raw: str, region: str = "US") -> str | None:
    """`raw` as E.164 (`+12125550123`), or None when it is not a valid number.

    National forms are read in `region`; a leading `+` or an `1` followed by ten NANP digits
    is accepted as publishers send both.
    """
    text = raw.strip()
    if not text or len(text) > MAX_INPUT or not text.isprintable():
        return None
    plain = _PLAIN_NANP.fullmatch(text) if region == "US" or text.startswith("+1") else None
    if plain is not None:
        # Skips `parse` (half the cost); validity is still the library's, US first.
        national = plain.group(1)
        return "+1" + national if _valid_nanp(national) else None
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def national_format(e164: str) -> str:
    """`(212) 555-0123` for a NANP number, the international form otherwise."""
    parsed = phonenumbers.parse(e164, None)
    if parsed.country_code == 1:
        return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def area_code(e164: str) -> str | None:
    """The NANP area code of an E.164 number, None outside +1."""
    if e164.startswith("+1") and len(e164) == 12:
        return e164[2:5]
    return None


def _valid_nanp(national: str) -> bool:
    """Whether ten NANP digits are a valid number, as `is_valid_number` decides."""
    general, fixed_line = _us_patterns()
    if general.fullmatch(national) and fixed_line.fullmatch(national):
        # The library's US check tries nine number types before fixed line, where nearly every
        # caller is found: two matches here instead of ten (measured 8.5 us -> 1.4 us a number).
        return True
    number = PhoneNumber(country_code=1, national_number=int(national))
    return phonenumbers.is_valid_number_for_region(number, "US") or phonenumbers.is_valid_number(
        number
    )


@cache
def _us_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The US metadata's patterns for any valid number and for a fixed-line number."""
    metadata = PhoneMetadata.metadata_for_region("US")
    if metadata is None:
        raise RuntimeError("phonenumbers has no US metadata")
    return _pattern(metadata.general_desc), _pattern(metadata.fixed_line)


def _pattern(desc: PhoneNumberDesc | None) -> re.Pattern[str]:
    if desc is None or not desc.national_number_pattern:
        raise RuntimeError("phonenumbers has no US number pattern")
    return re.compile(desc.national_number_pattern)
