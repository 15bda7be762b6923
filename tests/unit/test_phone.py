"""Phone normalisation: the plain-NANP fast path agrees with phonenumbers' full parse."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.adapters.phone import area_code, national_format, to_e164


def reference(raw: str) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=400, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=10, max_size=10),
    prefix=st.sampled_from(["", "1", "+1", "+"]),
)
def test_fast_path_agrees_with_the_library(digits: str, prefix: str) -> None:
    raw = prefix + digits
    assert to_e164(raw) == reference(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+12125550123", "+12125550123"),
        ("(212) 555-0123", "+12125550123"),
        ("+1 416 555 0199", "+14165550199"),
        ("+442071838750", "+442071838750"),
        ("+10005550123", None),
        ("", None),
        ("   ", None),
        ("+1212555012\x00", None),
        ("9" * 80, None),
    ],
)
def test_to_e164(raw: str, expected: str | None) -> None:
    assert to_e164(raw) == expected


def test_display_forms() -> None:
    assert national_format("+12125550123") == "(212) 555-0123"
    assert national_format("+442071838750").startswith("+44 20")
    assert area_code("+12125550123") == "212"
    assert area_code("+442071838750") is None
