"""Conversion of ended calls: promises kept, buffers, tag conditions, revshare, de-dupe."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.domain.conversion import (
    Conversion,
    EndedCall,
    NotConverted,
    Promise,
    convert,
)
from callbid.domain.model import ConversionCriterion, FilterOp, PayoutKind, TagRule

NOW = 1_800_000_000.0
PAYS_PUB1 = ConversionCriterion(
    1, publisher_id="pub1", payout=12.5, revenue=30.0, buffer_seconds=90
)
NY_ONLY = ConversionCriterion(
    2,
    payout=8.0,
    revenue=20.0,
    buffer_seconds=60,
    rules=(TagRule("caller_state", FilterOp.EQUALS, ("NY",)),),
)
REVSHARE = ConversionCriterion(
    3, payout_kind=PayoutKind.REVSHARE, payout=40.0, revenue=10.0, buffer_seconds=30
)
CRITERIA = (PAYS_PUB1, NY_ONLY, REVSHARE)


def call(seconds: int, publisher: str = "pub1", **kw: object) -> EndedCall:
    values: dict[str, object] = {
        "publisher_id": publisher,
        "tags": {"caller_state": "CA"},
        "connected_seconds": seconds,
        "ended_at": NOW,
    }
    values.update(kw)
    return EndedCall(**values)  # type: ignore[arg-type]


def test_a_reserved_call_converts_on_its_promise_at_the_buffer() -> None:
    promise = Promise(criterion_id=1, payout=12.5, revenue=30.0, buffer_seconds=95)

    assert convert(CRITERIA, call(95, promise=promise)) == Conversion(True, 1, 12.5, 30.0)
    below = convert(CRITERIA, call(94, promise=promise))
    assert not below.converted
    assert below.reason == "below buffer: connected 94 s, buffer 95 s"
    assert (below.payout, below.revenue) == (0.0, 0.0)


def test_a_promise_is_kept_although_the_criteria_changed_since() -> None:
    promise = Promise(criterion_id=99, payout=7.0, revenue=9.0, buffer_seconds=10)

    assert convert((), call(11, promise=promise)) == Conversion(True, 99, 7.0, 9.0)


def test_an_unmatched_call_is_paid_by_the_first_criterion_whose_buffer_it_reaches() -> None:
    assert convert(CRITERIA, call(90)) == Conversion(True, 1, 12.5, 30.0)
    # Below the publisher's 90 s but above the revshare's 30 s: the revshare pays, with no bid
    # to share nothing, and the revenue is the criterion's.
    assert convert(CRITERIA, call(45)) == Conversion(True, 3, 0.0, 10.0)
    assert convert(CRITERIA, call(45, bid=50.0)) == Conversion(True, 3, 20.0, 50.0)


def test_tag_conditions_and_publishers_decide_which_criteria_pay() -> None:
    ny = {"caller_state": "NY"}

    assert convert(CRITERIA, call(61, publisher="other", tags=ny)) == Conversion(True, 2, 8.0, 20.0)
    assert convert((PAYS_PUB1, NY_ONLY), call(500, publisher="other")) == Conversion(
        False, reason=NotConverted.NO_CRITERION
    )


def test_below_every_buffer_names_the_first_payable_criterion() -> None:
    result = convert(CRITERIA, call(20))

    assert not result.converted
    assert result.criterion_id == 1
    assert result.reason == "below buffer: connected 20 s, buffer 90 s"


@pytest.mark.parametrize("seconds", [0, -3])
def test_a_call_that_never_connected_never_converts(seconds: int) -> None:
    promise = Promise(1, 12.5, 30.0, 0)

    assert convert(CRITERIA, call(seconds, promise=promise)) == Conversion(
        False, reason=NotConverted.NOT_CONNECTED
    )


def test_a_duplicate_caller_flag_refuses_even_a_promise() -> None:
    promise = Promise(1, 12.5, 30.0, 0)

    assert convert(CRITERIA, call(300, promise=promise, duplicate=True)) == Conversion(
        False, reason=NotConverted.DUPLICATE
    )


def test_dedupe_windows_skip_a_criterion_for_a_repeat_caller_until_they_pass() -> None:
    windowed = replace(PAYS_PUB1, dedupe_seconds=3600)
    fallback = replace(NY_ONLY, rules=(), dedupe_seconds=0)

    recent = call(120, last_conversions={1: NOW - 600})
    assert convert((windowed, fallback), recent) == Conversion(True, 2, 8.0, 20.0)
    assert convert((windowed,), recent) == Conversion(
        False, 1, reason=NotConverted.IN_DEDUPE_WINDOW
    )
    passed = call(120, last_conversions={1: NOW - 3600})
    assert convert((windowed,), passed) == Conversion(True, 1, 12.5, 30.0)


@given(
    seconds=st.integers(-10, 10_000),
    buffer=st.integers(0, 10_000),
    payout=st.floats(0, 1000, allow_nan=False),
)
def test_a_promise_converts_exactly_when_the_buffer_is_reached(
    seconds: int, buffer: int, payout: float
) -> None:
    result = convert(CRITERIA, call(seconds, promise=Promise(5, payout, 1.0, buffer)))

    assert result.converted == (seconds > 0 and seconds >= buffer)
    assert result.payout == (payout if result.converted else 0.0)


@given(
    seconds=st.integers(1, 10_000),
    bid=st.none() | st.floats(0, 10_000, allow_nan=False),
    state=st.sampled_from(["NY", "CA", ""]),
    publisher=st.sampled_from(["pub1", "pub2"]),
)
def test_a_conversion_never_pays_more_than_its_criterion_allows(
    seconds: int, bid: float | None, state: str, publisher: str
) -> None:
    result = convert(CRITERIA, call(seconds, publisher, tags={"caller_state": state}, bid=bid))

    if not result.converted:
        assert (result.payout, result.revenue) == (0.0, 0.0)
        return
    criterion = next(c for c in CRITERIA if c.id == result.criterion_id)
    assert seconds >= criterion.buffer_seconds
    if criterion.payout_kind is PayoutKind.FIXED:
        assert result.payout == criterion.payout
    else:
        assert result.payout <= (bid or 0.0)
