"""Phone numbers through `phonenumbers`: E.164 normalisation and display forms."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

MAX_INPUT = 64


def to_e164(raw: str, region: str = "US") -> str | None:
    """`raw` as E.164 (`+12125550123`), or None when it is not a valid number.

    National forms are read in `region`; a leading `+` or an `1` followed by ten NANP digits
    is accepted as publishers send both.
    """
    text = raw.strip()
    if not text or len(text) > MAX_INPUT or not text.isprintable():
        return None
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
