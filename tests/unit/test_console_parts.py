"""The console's pure parts: content negotiation, outcomes in words, charts, throttling waits,
log cursors and filters, report periods."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbid.console.charts import _scale, bar_chart, line_chart
from callbid.console.logs import cursor_of, parse_cursor, parse_filter
from callbid.console.pages import prefers_html
from callbid.console.reports import parse_period
from callbid.console.words import describe_outcome
from callbid.domain.errors import InvalidInput
from callbid.service.users import FREE_ATTEMPTS, MAX_WAIT_SECONDS, normalize_email, wait_after

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html", False),  # a tie goes to JSON
        ("text/html;q=0.5, application/json", False),
        ("application/json;q=0.2, text/html", True),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
    ],
)
def test_html_only_when_ranked_above_json(accept: str, html: bool) -> None:
    assert prefers_html(accept) is html


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        ("closed", "Closed: outside its hours of operation"),
        ("capped:concurrency", "At its cap: the limit on concurrent calls is reached"),
        ("capped:group-3:daily", "At its cap: the limit on calls today of group-3 is reached"),
        (
            "filtered:caller_state in [NY]",
            "Filtered out: the lead's tags fail the rule caller_state in [NY]",
        ),
        ("ping_timeout", "The buyer did not answer before the deadline"),
        ("something_new", "Something new"),
        (None, "—"),
    ],
)
def test_outcomes_in_plain_words(outcome: str | None, words: str) -> None:
    assert describe_outcome(outcome) == words


def test_waits_double_after_the_free_attempts_up_to_a_ceiling() -> None:
    assert [wait_after(n) for n in range(FREE_ATTEMPTS)] == [0.0] * FREE_ATTEMPTS
    assert [wait_after(FREE_ATTEMPTS + n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert wait_after(FREE_ATTEMPTS + 40) == MAX_WAIT_SECONDS


def test_emails_are_stored_lower_case_and_checked() -> None:
    assert normalize_email("  Owner@Example.COM ") == "owner@example.com"
    for bad in ("owner", "owner@", "@example.com", "a b@example.com", "x@" + "y" * 260 + ".io"):
        with pytest.raises(InvalidInput, match="email"):
            normalize_email(bad)


def test_cursors_round_trip_and_bad_ones_are_refused() -> None:
    at = datetime(2026, 12, 7, 9, 30, 1, 123456, tzinfo=UTC)
    assert parse_cursor(cursor_of(at, "0193-abc")) == (at, "0193-abc")
    assert parse_cursor(None) is None
    for bad in ("yesterday", "2026-12-07T09:30:00", "2026-12-07~", "nope~abc"):
        with pytest.raises(InvalidInput, match="cursor"):
            parse_cursor(bad)


def test_filters_name_the_field_that_is_wrong() -> None:
    wanted = parse_filter(
        {"campaign": "3", "caller": "(212) 555-0123", "since": "2026-12-07T09:30"}, ("reserved",)
    )
    assert wanted.campaign_id == 3
    assert wanted.caller_number == "+12125550123"
    assert wanted.since == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"^campaign"):
        parse_filter({"campaign": "x"}, ())
    with pytest.raises(InvalidInput, match=r"^status"):
        parse_filter({"status": "gone"}, ("reserved",))
    with pytest.raises(InvalidInput, match=r"^until"):
        parse_filter({"until": "later"}, ())


def test_report_periods_default_to_the_last_week_and_are_bounded() -> None:
    today = date(2026, 12, 7)
    period = parse_period({}, today)
    assert (period.first, period.last) == (date(2026, 12, 1), today)
    assert len(period.days()) == 7
    assert period.until == datetime(2026, 12, 8, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"^from: must not be after"):
        parse_period({"from": "2026-12-08"}, today)
    with pytest.raises(InvalidInput, match="at most"):
        parse_period({"from": "2024-01-01"}, today)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_the_axis_covers_the_largest_value(top: float) -> None:
    assert _scale(top) >= top


def test_charts_draw_one_line_per_series_and_one_bar_per_label() -> None:
    days = ["2026-12-01", "2026-12-02", "2026-12-03"]
    line = line_chart("Pings", days, {"pings": [1, 5, 2], "reserved": [0, 3, 1]})
    assert line.count("<polyline") == 2
    assert "<figcaption>Pings</figcaption>" in line
    bars = bar_chart("Rate <by> publisher", ["a", "b"], [10.0, 50.0], unit="%")
    assert bars.count("<rect") == 2
    assert "Rate &lt;by&gt; publisher" in bars
    empty = line_chart("Nothing", [], {"pings": []})
    assert "<svg" in empty


def test_axis_amounts_and_labels_read_as_people_write_them() -> None:
    from callbid.console.charts import _amount, _short

    assert [_amount(v, "$") for v in (0, 12.5, 1200)] == ["$0", "$12.5", "$1,200"]
    assert _amount(40, "%") == "40%"
    assert _short("2026-12-07") == "12-07"
    assert _short("demo-pub") == "demo-pub"
    assert _short("a-very-long-publisher") == "a-very-lo…"
