"""Campaign warnings (`domain.checkup`) and the publisher links (`console.links`)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callbid.console.links import build_links, parse_tags
from callbid.domain.checkup import (
    FAILING_AFTER,
    campaign_warnings,
    failing_buyers,
    opens_again_this_week,
)
from callbid.domain.errors import InvalidInput
from callbid.domain.model import (
    Campaign,
    ConversionCriterion,
    HoursBlock,
    Publisher,
    RtbKey,
    Schedule,
    Target,
)

NY = ZoneInfo("America/New_York")
#: Wednesday 2026-12-09, 12:00 in New York.
WEDNESDAY_NOON = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)


def schedule(*blocks: tuple[int, int, int]) -> Schedule:
    return Schedule(NY, tuple(HoursBlock(day, start * 60, end * 60) for day, start, end in blocks))


@pytest.mark.parametrize(
    ("blocks", "opens"),
    [
        ((), True),  # open around the clock
        (((2, 9, 17),), True),  # open now
        (((4, 9, 17),), True),  # Friday, later this week
        (((0, 9, 17), (1, 9, 17)), False),  # Monday and Tuesday are past
        (((2, 8, 11),), False),  # this morning is past
        (((6, 22, 2),), True),  # Sunday night, overnight
    ],
)
def test_hours_left_this_week(blocks: tuple[tuple[int, int, int], ...], opens: bool) -> None:
    assert opens_again_this_week(schedule(*blocks), WEDNESDAY_NOON) is opens


def ping(target_id: int | None, outcome: str) -> dict[str, object]:
    return {"target_id": target_id, "ping": {"outcome": outcome}}


def test_a_buyer_fails_when_its_latest_pings_all_failed() -> None:
    logs = [[ping(1, "timeout"), ping(2, "error")]] * FAILING_AFTER + [[ping(2, "accepted")]]
    logs = [[ping(2, "accepted"), ping(1, "error")], *logs]  # newest first
    assert failing_buyers(logs) == {1: FAILING_AFTER + 1}
    assert failing_buyers([[ping(None, "error")]] * 2) == {}
    assert failing_buyers([[{"target_id": 3, "outcome": "closed"}]]) == {}


def test_warnings_name_what_cannot_work() -> None:
    campaign = Campaign(
        id=1,
        company_id=1,
        name="c",
        targets=(
            Target(id=7, name="Early birds", destination="+1", schedule=schedule((0, 6, 8))),
            Target(id=8, name="Paused", destination="+1", paused=True, schedule=schedule()),
        ),
        criteria=(ConversionCriterion(id=1, publisher_id="paid", payout=5.0),),
        publishers={"paid": Publisher("paid"), "unpaid": Publisher("unpaid")},
    )
    keys = [RtbKey(key="k1", company_id=1, campaign_id=1)]

    warnings = campaign_warnings(campaign, keys, WEDNESDAY_NOON, {7: 4})

    assert [w.subject for w in warnings] == [
        "publisher unpaid",
        "RTB key k1",
        "target Early birds",
        "target Early birds",
    ]
    assert "payout of $0" in warnings[0].message
    assert "failed its last 4 pings" in warnings[3].message


def test_links_keep_placeholders_and_refuse_bad_tags() -> None:
    links = build_links("https://calls.example.com/", "k", "pub 1", parse_tags("caller_zip"))
    assert links.rtb == (
        "https://calls.example.com/rtbs.json?key=k&publisher_id=pub%201"
        "&caller_number=[caller_number]&caller_zip=[caller_zip]"
    )
    assert links.legacy.startswith("https://calls.example.com/call_reservations.json?key=k&")
    assert "caller_number=%2B12125550123&caller_zip=10001" in links.curl
    for bad in ("two words", "key=x", "=x"):
        with pytest.raises(InvalidInput, match="tags: line 1"):
            parse_tags(bad)
    with pytest.raises(InvalidInput, match="publisher_id"):
        build_links("http://x", "k", " ")


def test_a_target_closed_until_next_week_is_warned_of_unless_it_opens_within_a_day() -> None:
    weekdays = schedule(*((day, 9, 17) for day in range(5)))
    target = Target(id=1, name="Weekdays", destination="+1", schedule=weekdays)
    campaign = Campaign(id=1, company_id=1, name="c", targets=(target,))
    saturday_noon = datetime(2026, 12, 12, 17, 0, tzinfo=UTC)
    sunday_evening = datetime(2026, 12, 13, 23, 0, tzinfo=UTC)  # 18:00 in New York

    (warning,) = campaign_warnings(campaign, [], saturday_noon, {})
    assert warning.message == (
        "it has no open hours left this week; it opens next Monday 09:00 (America/New_York)"
    )
    assert campaign_warnings(campaign, [], sunday_evening, {}) == []
    assert campaign_warnings(campaign, [], WEDNESDAY_NOON, {}) == []
