"""The form parser reads exactly what `urllib.parse.parse_qsl` reads."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.api.params import _parse_form
from callbid.domain.errors import InvalidInput

FORM_CHARS = st.text(alphabet="abcXYZ019=&+%-_.~ é2B41", max_size=40)


@given(FORM_CHARS)
def test_agrees_with_parse_qsl(text: str) -> None:
    try:
        expected = {
            k.strip().lower(): v
            for k, v in parse_qsl(text, keep_blank_values=True, errors="strict")
        }
    except UnicodeDecodeError:
        with pytest.raises(InvalidInput):
            _parse_form(text, 1000, "body")
        return
    assert _parse_form(text, 1000, "body") == expected


def test_field_limit() -> None:
    with pytest.raises(InvalidInput, match="too many parameters"):
        _parse_form("&".join(f"a{i}=1" for i in range(11)), 10, "body")


def test_decodes_plus_and_percent() -> None:
    assert _parse_form("caller_number=%2B1212&First+Name=J%C3%A9r%C3%B4me", 10, "q") == {
        "caller_number": "+1212",
        "first name": "Jérôme",
    }
