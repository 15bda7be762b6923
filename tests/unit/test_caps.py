"""Cap arithmetic every hot-state store applies: caps, cap subjects, de-dupe, rate limiting."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.domain.model import Caps, Publisher, Schedule, Target, TargetGroup
from callbid.domain.reserve import (
    CapSubject,
    PayoutOption,
    PeriodCap,
    RateRule,
    blocking_cap,
    cap_subject,
    choose_option,
    gcra,
    is_duplicate,
    namespace,
    publisher_subject,
    target_subjects,
)

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
FAST = settings(database=None, max_examples=200, deadline=None)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the test suite's usual clock
EPOCH_NOW = NOW.timestamp()
PERIODS = ("hourly", "daily", "monthly", "lifetime")


def subject(*, label: str = "", concurrency: int | None = None, **limits: int) -> CapSubject:
    periods = tuple(PeriodCap(name, f"t1:{name}", limit) for name, limit in limits.items())
    return CapSubject("t1", label, concurrency, periods)


def one_period(name: str, limit: int) -> CapSubject:
    return CapSubject("t1", "", None, (PeriodCap(name, f"t1:{name}", limit),))


# --- blocking_cap -----------------------------------------------------------------------------


def test_no_caps_never_block() -> None:
    s = subject()
    assert blocking_cap(s, live=10**6, pending=10**6, counters={"t1:daily": 10**6}) is None


@pytest.mark.parametrize("limit", [1, 2, 5, 100])
def test_concurrency_at_the_boundary(limit: int) -> None:
    s = subject(concurrency=limit)
    assert blocking_cap(s, live=limit - 1, pending=0, counters={}) is None
    assert blocking_cap(s, live=limit, pending=0, counters={}) == "capped:concurrency"
    assert blocking_cap(s, live=limit + 1, pending=0, counters={}) == "capped:concurrency"


def test_concurrency_ignores_pending_and_counters() -> None:
    s = subject(concurrency=3)
    assert blocking_cap(s, live=2, pending=50, counters={"t1:daily": 99}) is None


def test_concurrency_zero_blocks_everything() -> None:
    assert blocking_cap(subject(concurrency=0), 0, 0, {}) == "capped:concurrency"


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("limit", [1, 3, 50])
def test_period_cap_counter_at_the_boundary(period: str, limit: int) -> None:
    s = one_period(period, limit)
    counter = f"t1:{period}"
    assert blocking_cap(s, live=0, pending=0, counters={counter: limit - 1}) is None
    assert blocking_cap(s, live=0, pending=0, counters={counter: limit}) == f"capped:{period}"
    assert blocking_cap(s, live=0, pending=0, counters={counter: limit + 7}) == f"capped:{period}"


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize(
    ("counted", "pending", "blocked"),
    [(0, 4, False), (0, 5, True), (2, 2, False), (2, 3, True), (4, 0, False), (4, 1, True)],
)
def test_period_cap_sees_counter_plus_pending(
    period: str, counted: int, pending: int, blocked: bool
) -> None:
    s = one_period(period, 5)
    reason = blocking_cap(s, live=0, pending=pending, counters={f"t1:{period}": counted})
    assert reason == (f"capped:{period}" if blocked else None)


@pytest.mark.parametrize("period", PERIODS)
def test_period_cap_ignores_live_calls(period: str) -> None:
    s = one_period(period, 5)
    assert blocking_cap(s, live=1000, pending=0, counters={}) is None


def test_missing_counter_counts_as_zero() -> None:
    s = subject(daily=1)
    assert blocking_cap(s, live=0, pending=0, counters={"t1:other": 100}) is None
    assert blocking_cap(s, live=0, pending=1, counters={}) == "capped:daily"


def test_first_blocking_cap_wins() -> None:
    s = subject(concurrency=1, hourly=1, daily=1, monthly=1, lifetime=1)
    full = {f"t1:{p}": 1 for p in PERIODS}
    assert blocking_cap(s, 1, 0, full) == "capped:concurrency"
    assert blocking_cap(s, 0, 0, full) == "capped:hourly"
    assert blocking_cap(s, 0, 0, full | {"t1:hourly": 0}) == "capped:daily"
    assert blocking_cap(s, 0, 0, {"t1:monthly": 1, "t1:lifetime": 1}) == "capped:monthly"
    assert blocking_cap(s, 0, 0, {"t1:lifetime": 1}) == "capped:lifetime"
    assert blocking_cap(s, 0, 0, {}) is None


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("", "capped:daily"),
        ("group-3", "capped:group-3:daily"),
        ("publisher", "capped:publisher:daily"),
    ],
)
def test_label_prefixes_the_reason(label: str, expected: str) -> None:
    s = subject(label=label, daily=2)
    assert blocking_cap(s, 0, 0, {"t1:daily": 2}) == expected
    assert blocking_cap(subject(label=label, concurrency=1), 1, 0, {}) == expected.replace(
        "daily", "concurrency"
    )


@given(
    limit=st.integers(0, 50),
    live=st.integers(0, 60),
    pending=st.integers(0, 60),
    counted=st.integers(0, 60),
)
@FAST
def test_blocking_cap_is_a_plain_threshold(
    limit: int, live: int, pending: int, counted: int
) -> None:
    assert (blocking_cap(subject(concurrency=limit), live, pending, {}) is None) is (live < limit)
    daily = blocking_cap(subject(daily=limit), live, pending, {"t1:daily": counted})
    assert (daily is None) is (counted + pending < limit)


# --- cap subjects ------------------------------------------------------------------------------


def test_cap_subject_bucket_keys_in_utc() -> None:
    caps = Caps(concurrency=2, hourly=3, daily=4, monthly=5, lifetime=6)
    s = cap_subject("t7", "", caps, Schedule(), NOW)
    assert s == CapSubject(
        "t7",
        "",
        2,
        (
            PeriodCap("hourly", "t7:h2026112315", 3),
            PeriodCap("daily", "t7:d20261123", 4),
            PeriodCap("monthly", "t7:m202611", 5),
            PeriodCap("lifetime", "t7:life", 6),
        ),
    )


@pytest.mark.parametrize(
    ("now", "tz", "hour", "day", "month"),
    [
        (NOW, NY, "h2026112310", "d20261123", "m202611"),
        (NOW, TOKYO, "h2026112400", "d20261124", "m202611"),
        # 04:30Z on Dec 1st is still November 30th in New York and Dec 1st in Tokyo.
        (datetime(2026, 12, 1, 4, 30, tzinfo=UTC), NY, "h2026113023", "d20261130", "m202611"),
        (datetime(2026, 12, 1, 4, 30, tzinfo=UTC), TOKYO, "h2026120113", "d20261201", "m202612"),
        (
            datetime(2026, 12, 1, 4, 30, tzinfo=UTC),
            ZoneInfo("UTC"),
            "h2026120104",
            "d20261201",
            "m202612",
        ),
    ],
)
def test_cap_subject_buckets_follow_the_zone(
    now: datetime, tz: ZoneInfo, hour: str, day: str, month: str
) -> None:
    s = cap_subject("g3", "group-3", Caps(hourly=1, daily=1, monthly=1), Schedule(tz=tz), now)
    assert [p.counter for p in s.periods] == [f"g3:{hour}", f"g3:{day}", f"g3:{month}"]


def test_cap_subject_only_lists_set_caps() -> None:
    s = cap_subject("t1", "", Caps(daily=10), Schedule(), NOW)
    assert s.periods == (PeriodCap("daily", "t1:d20261123", 10),)
    assert s.concurrency is None
    s = cap_subject("t1", "", Caps(lifetime=0), Schedule(), NOW)
    assert s.periods == (PeriodCap("lifetime", "t1:life", 0),)
    assert cap_subject("t1", "", Caps(), Schedule(), NOW).periods == ()


def test_lifetime_bucket_does_not_change_over_time() -> None:
    a = cap_subject("t1", "", Caps(lifetime=5), Schedule(), NOW)
    b = cap_subject("t1", "", Caps(lifetime=5), Schedule(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a == b


def test_target_subjects_target_first_then_each_group_in_its_zone() -> None:
    target = Target(
        7,
        "Buyer",
        "+15550000007",
        caps=Caps(daily=10),
        schedule=Schedule(tz=NY),
        group_ids=(3, 9, 42),  # 42 is not a loaded group: skipped
    )
    groups = {
        3: TargetGroup(3, "East", Caps(concurrency=2, daily=20), tz=TOKYO),
        9: TargetGroup(9, "All", Caps()),
    }
    subjects = target_subjects(target, groups, NOW)
    assert [(s.key, s.label) for s in subjects] == [
        ("t7", ""),
        ("g3", "group-3"),
        ("g9", "group-9"),
    ]
    assert subjects[0].periods == (PeriodCap("daily", "t7:d20261123", 10),)  # NY: 10:00
    assert subjects[1].concurrency == 2
    assert subjects[1].periods == (PeriodCap("daily", "g3:d20261124", 20),)  # Tokyo: 00:00
    assert subjects[2] == CapSubject("g9", "group-9", None, ())


def test_publisher_subject() -> None:
    assert publisher_subject(Publisher("P1"), NOW) is None
    p = Publisher("P1", caps=Caps(hourly=4), schedule=Schedule(tz=NY))
    assert publisher_subject(p, NOW) == CapSubject(
        "pP1", "publisher", None, (PeriodCap("hourly", "pP1:h2026112310", 4),)
    )
    concurrency_only = publisher_subject(Publisher("P2", caps=Caps(concurrency=1)), NOW)
    assert concurrency_only == CapSubject("pP2", "publisher", 1, ())


def test_namespace() -> None:
    assert namespace(12) == "co12"


# --- de-dupe ------------------------------------------------------------------------------------


def option(window: int, criterion_id: int | None = None) -> PayoutOption:
    return PayoutOption(criterion_id, window, 60, 0.0)


@pytest.mark.parametrize(
    ("windows", "last_seen", "now", "expected"),
    [
        ((0,), None, 1000.0, 0),
        ((0,), 999.0, 1000.0, 0),  # no window: never a duplicate
        ((3600,), None, 1000.0, 0),  # never seen
        ((3600,), 1000.0 - 3599, 1000.0, None),
        ((3600,), 1000.0 - 3600, 1000.0, 0),  # window passed exactly
        ((3600,), 1000.0 - 3601, 1000.0, 0),
        ((3600,), 1000.0, 1000.0, None),
        # First option still in its window: fall through to the next whose window passed.
        ((86400, 3600), 1000.0 - 7200, 1000.0, 1),
        ((86400, 3600), 1000.0 - 1800, 1000.0, None),
        ((86400, 3600), 1000.0 - 90000, 1000.0, 0),
        ((86400, 3600, 0), 1000.0 - 60, 1000.0, 2),
        ((3600, 86400), 1000.0 - 7200, 1000.0, 0),  # configured order wins
        ((-5,), 999.0, 1000.0, 0),
    ],
)
def test_choose_option(
    windows: tuple[int, ...], last_seen: float | None, now: float, expected: int | None
) -> None:
    options = tuple(option(w, i) for i, w in enumerate(windows))
    assert choose_option(options, last_seen, now) == expected


def test_choose_option_with_no_options() -> None:
    assert choose_option((), None, 0.0) is None


@pytest.mark.parametrize(
    ("dedupe", "last_seen", "now", "expected"),
    [
        (0, 999.0, 1000.0, False),
        (0, 1000.0, 1000.0, False),
        (60, None, 1000.0, False),
        (60, 1000.0, 1000.0, True),
        (60, 941.0, 1000.0, True),  # 59 s ago
        (60, 940.0, 1000.0, False),  # exactly 60 s ago: window passed
        (60, 939.0, 1000.0, False),
        (-1, 1000.0, 1000.0, False),
    ],
)
def test_is_duplicate(dedupe: int, last_seen: float | None, now: float, expected: bool) -> None:
    assert is_duplicate(dedupe, last_seen, now) is expected


@given(
    window=st.integers(1, 10**6),
    ago=st.floats(0, 2 * 10**6, allow_nan=False),
)
@FAST
def test_is_duplicate_agrees_with_choose_option(window: int, ago: float) -> None:
    now = 10**7 + 0.5
    last_seen = now - ago
    assert is_duplicate(window, last_seen, now) is (
        choose_option((option(window),), last_seen, now) is None
    )


# --- GCRA rate limiting --------------------------------------------------------------------------


def drain(rule: RateRule, now: float, tat: float | None = None) -> tuple[int, float | None, float]:
    """Requests at one instant until refused: (how many passed, tat, retry_after)."""
    passed = 0
    while passed < 10_000:
        new_tat, wait = gcra(tat, now, rule)
        if new_tat is None:
            return passed, tat, wait
        assert wait == 0.0
        tat = new_tat
        passed += 1
    raise AssertionError("never limited")


def test_gcra_first_request_passes() -> None:
    tat, wait = gcra(None, 100.0, RateRule("k", 2.0, 1))
    assert (tat, wait) == (100.5, 0.0)


@pytest.mark.parametrize("burst", [1, 2, 3, 4, 10])
@pytest.mark.parametrize("rate", [1.0, 2.0, 4.0, 0.5, 0.25])
def test_gcra_allows_the_burst_then_waits_one_interval(rate: float, burst: int) -> None:
    rule = RateRule("k", rate, burst)
    passed, tat, wait = drain(rule, 100.0)
    assert passed == burst
    assert wait == pytest.approx(1.0 / rate)
    # Waiting less than retry_after is refused again, waiting exactly retry_after passes.
    assert gcra(tat, 100.0 + wait / 2, rule)[0] is None
    assert gcra(tat, 100.0 + wait, rule)[0] is not None


def test_gcra_burst_zero_behaves_like_one() -> None:
    assert drain(RateRule("k", 1.0, 0), 10.0)[0] == 1


def test_gcra_retry_after_exact_values() -> None:
    rule = RateRule("k", 2.0, 1)  # one every 0.5 s
    tat, _ = gcra(None, 10.0, rule)
    assert tat == 10.5
    assert gcra(tat, 10.125, rule) == (None, 0.375)
    assert gcra(tat, 10.25, rule) == (None, 0.25)
    assert gcra(tat, 10.5, rule) == (11.0, 0.0)
    # With a burst of 3 at 1/s: three pass at t=0, the fourth waits exactly 1 s.
    rule = RateRule("k", 1.0, 3)
    passed, tat, wait = drain(rule, 0.0)
    assert (passed, tat, wait) == (3, 3.0, 1.0)
    assert gcra(tat, 0.25, rule) == (None, 0.75)
    assert gcra(tat, 1.0, rule) == (4.0, 0.0)


def test_gcra_steady_rate_is_never_limited() -> None:
    rule = RateRule("k", 4.0, 1)
    tat = None
    for i in range(100):
        tat, wait = gcra(tat, 50.0 + i * 0.25, rule)
        assert tat is not None
        assert wait == 0.0


def test_gcra_idle_time_refills_only_up_to_the_burst() -> None:
    rule = RateRule("k", 1.0, 2)
    _, tat, _ = drain(rule, 0.0)
    # An hour of silence: again exactly the burst, not 3600 requests.
    assert drain(rule, 3600.0, tat)[0] == 2


def test_gcra_partial_refill() -> None:
    rule = RateRule("k", 1.0, 5)
    _, tat, _ = drain(rule, 0.0)
    assert drain(rule, 2.0, tat)[0] == 2  # two intervals passed: two slots back


def test_gcra_refusal_does_not_need_state_change() -> None:
    rule = RateRule("k", 1.0, 1)
    tat, _ = gcra(None, 0.0, rule)
    assert gcra(tat, 0.1, rule) == gcra(tat, 0.1, rule)


@given(
    per_second=st.sampled_from([0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 0.25]),
    burst=st.integers(1, 20),
    now=st.integers(0, 10**6).map(float),
)
@FAST
def test_gcra_burst_at_any_instant(per_second: float, burst: int, now: float) -> None:
    """With binary-exact intervals and times, exactly `burst` pass at once."""
    passed, tat, wait = drain(RateRule("k", per_second, burst), now)
    assert passed == burst
    assert wait == 1.0 / per_second
    assert tat is not None
    assert gcra(tat, now + wait, RateRule("k", per_second, burst))[0] is not None


@pytest.mark.parametrize("per_second", [5.0, 2.5, 0.7, 6.0, 13.0])
def test_gcra_burst_at_real_epoch_times(per_second: float) -> None:
    rule = RateRule("k", per_second, 2)
    passed, _, wait = drain(rule, EPOCH_NOW)
    assert passed == 2, f"only {passed} passed, then asked to wait {wait!r} s"
