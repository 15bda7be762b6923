"""Business hours: `is_open` on block edges, overnight and whole-day blocks, DST, parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbid.domain.hours import (
    block_from,
    format_hhmm,
    is_open,
    next_midnight,
    parse_hhmm,
    period_buckets,
)
from callbid.domain.model import HoursBlock, Schedule

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
Z_UTC = ZoneInfo("UTC")
FAST = settings(database=None, max_examples=200, deadline=None)

# A reference week on UTC: 2026-11-23 is a Monday (weekday 0) ... 2026-11-29 a Sunday (6).
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(weekday: int, hhmm: str, *, second: int = 0, tz: ZoneInfo = Z_UTC) -> datetime:
    """An aware instant on the reference week's `weekday` at local `hhmm` in `tz`."""
    hh, mm = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 11, 23 + weekday, hh, mm, second, tzinfo=tz)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sched(*blocks: HoursBlock, tz: ZoneInfo = Z_UTC) -> Schedule:
    return Schedule(tz=tz, blocks=blocks)


def test_reference_week_starts_on_monday() -> None:
    assert [at(d, "12:00").weekday() for d in range(7)] == list(range(7))


# --- Plain blocks -------------------------------------------------------------------------


NINE_TO_FIVE = sched(block_from(WED, "09:00", "17:00"))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(WED, "08:59"), False),
        (at(WED, "08:59", second=59), False),
        (at(WED, "09:00"), True),  # open minute inclusive
        (at(WED, "09:01"), True),
        (at(WED, "12:00"), True),
        (at(WED, "16:59"), True),
        (at(WED, "16:59", second=59), True),
        (at(WED, "17:00"), False),  # close minute exclusive
        (at(WED, "17:01"), False),
        (at(WED, "00:00"), False),
        (at(WED, "23:59"), False),
        # Same wall-clock time on other days.
        (at(TUE, "12:00"), False),
        (at(THU, "12:00"), False),
        (at(THU, "09:30"), False),
    ],
)
def test_day_block_edges(when: datetime, expected: bool) -> None:
    assert is_open(NINE_TO_FIVE, when) is expected


SPLIT_DAY = sched(
    block_from(MON, "08:00", "12:00"),
    block_from(MON, "13:00", "17:30"),
    block_from(MON, "20:00", "21:00"),
)


@pytest.mark.parametrize(
    ("hhmm", "expected"),
    [
        ("07:59", False),
        ("08:00", True),
        ("11:59", True),
        ("12:00", False),  # lunch gap
        ("12:30", False),
        ("12:59", False),
        ("13:00", True),
        ("17:29", True),
        ("17:30", False),
        ("19:59", False),
        ("20:00", True),
        ("20:59", True),
        ("21:00", False),
    ],
)
def test_several_blocks_a_day(hhmm: str, expected: bool) -> None:
    assert is_open(SPLIT_DAY, at(MON, hhmm)) is expected


def test_empty_schedule_is_always_open() -> None:
    always = Schedule()
    start = at(MON, "00:00")
    for step in range(0, 7 * 24 * 60, 37):
        assert is_open(always, start + timedelta(minutes=step))
    assert is_open(Schedule(tz=NY), utc(2026, 3, 8, 7))


@given(st.datetimes(timezones=st.just(UTC)))
@FAST
def test_empty_schedule_open_at_any_instant(now: datetime) -> None:
    assert is_open(Schedule(tz=NY), now)


def test_schedule_zone_reads_wall_clock_not_utc() -> None:
    berlin = sched(block_from(MON, "09:00", "10:00"), tz=BERLIN)
    # Berlin is UTC+1 in November.
    assert not is_open(berlin, utc(2026, 11, 23, 7, 59))
    assert is_open(berlin, utc(2026, 11, 23, 8, 0))
    assert is_open(berlin, utc(2026, 11, 23, 8, 59))
    assert not is_open(berlin, utc(2026, 11, 23, 9, 0))


def test_instant_in_another_zone_is_converted() -> None:
    s = sched(block_from(MON, "09:00", "17:00"))  # UTC schedule
    # 10:00 in New York (UTC-5) is 15:00 UTC: open; 13:00 NY is 18:00 UTC: closed.
    assert is_open(s, datetime(2026, 11, 23, 10, 0, tzinfo=NY))
    assert not is_open(s, datetime(2026, 11, 23, 13, 0, tzinfo=NY))


# --- Overnight blocks -----------------------------------------------------------------------


FRI_NIGHT = sched(block_from(FRI, "22:00", "06:00"))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(FRI, "05:00"), False),  # the morning before the block opens: not covered
        (at(FRI, "05:59"), False),
        (at(FRI, "21:59"), False),
        (at(FRI, "22:00"), True),
        (at(FRI, "23:59", second=59), True),
        (at(SAT, "00:00"), True),
        (at(SAT, "03:00"), True),
        (at(SAT, "05:59"), True),
        (at(SAT, "05:59", second=59), True),
        (at(SAT, "06:00"), False),
        (at(SAT, "06:01"), False),
        (at(SAT, "22:00"), False),  # the block is Friday's, not Saturday's
        (at(SUN, "01:00"), False),
        (at(THU, "23:00"), False),
    ],
)
def test_overnight_block(when: datetime, expected: bool) -> None:
    assert FRI_NIGHT.blocks == (HoursBlock(FRI, 22 * 60, 6 * 60),)
    assert is_open(FRI_NIGHT, when) is expected


def test_overnight_block_on_sunday_wraps_to_monday() -> None:
    s = sched(block_from(SUN, "23:00", "02:00"))
    assert is_open(s, at(SUN, "23:00"))
    assert is_open(s, at(MON, "01:59"))  # the Monday that starts the reference week
    assert not is_open(s, at(MON, "02:00"))
    assert is_open(s, at(MON, "01:00") + timedelta(days=7))
    assert not is_open(s, at(SUN, "22:59"))
    assert not is_open(s, at(SAT, "23:30"))


def test_block_until_midnight_24_00() -> None:
    s = sched(block_from(TUE, "18:00", "24:00"))
    assert s.blocks == (HoursBlock(TUE, 18 * 60, 0),)
    assert not is_open(s, at(TUE, "17:59"))
    assert is_open(s, at(TUE, "18:00"))
    assert is_open(s, at(TUE, "23:59", second=59))
    assert not is_open(s, at(WED, "00:00"))
    assert not is_open(s, at(WED, "18:00"))


def test_block_from_midnight_00_00() -> None:
    s = sched(block_from(TUE, "00:00", "06:00"))
    assert not is_open(s, at(MON, "23:59"))
    assert is_open(s, at(TUE, "00:00"))
    assert is_open(s, at(TUE, "05:59"))
    assert not is_open(s, at(TUE, "06:00"))


def test_equal_open_and_close_runs_24_hours_overnight() -> None:
    # close <= open means overnight: 09:00 Tuesday to 09:00 Wednesday.
    s = sched(block_from(TUE, "09:00", "09:00"))
    assert not is_open(s, at(TUE, "08:59"))
    assert is_open(s, at(TUE, "09:00"))
    assert is_open(s, at(WED, "08:59"))
    assert not is_open(s, at(WED, "09:00"))


def test_overnight_and_day_blocks_together() -> None:
    s = sched(block_from(FRI, "22:00", "06:00"), block_from(SAT, "10:00", "14:00"))
    assert is_open(s, at(SAT, "05:59"))
    assert not is_open(s, at(SAT, "06:00"))
    assert not is_open(s, at(SAT, "09:59"))
    assert is_open(s, at(SAT, "10:00"))
    assert not is_open(s, at(SAT, "14:00"))


# --- Whole-day blocks -----------------------------------------------------------------------


def test_whole_day_block_is_stored_as_zero_zero() -> None:
    assert block_from(THU, "00:00", "24:00") == HoursBlock(THU, 0, 0)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(WED, "23:59", second=59), False),
        (at(THU, "00:00"), True),
        (at(THU, "12:00"), True),
        (at(THU, "23:59", second=59), True),
        (at(FRI, "00:00"), False),
        (at(FRI, "00:30"), False),  # not an overnight block
    ],
)
def test_whole_day_block(when: datetime, expected: bool) -> None:
    s = sched(block_from(THU, "00:00", "24:00"))
    assert is_open(s, when) is expected


def test_whole_week_of_whole_days_is_always_open() -> None:
    s = sched(*(block_from(d, "00:00", "24:00") for d in range(7)), tz=NY)
    start = utc(2026, 3, 1, 0)
    for hours in range(0, 24 * 14, 5):
        assert is_open(s, start + timedelta(hours=hours, minutes=hours % 60))


@given(
    weekday=st.integers(0, 6),
    open_minute=st.integers(0, 1439),
    length=st.integers(1, 1439),
    offset=st.integers(-2 * 1440, 3 * 1440),
)
@FAST
def test_block_covers_exactly_its_minutes(
    weekday: int, open_minute: int, length: int, offset: int
) -> None:
    """Any block (day or overnight) covers [open, open + length) minutes from its day's midnight."""
    close_minute = (open_minute + length) % 1440
    s = sched(
        block_from(weekday, format_hhmm(open_minute), format_hhmm(close_minute or 1440)),
        tz=BERLIN,
    )
    midnight = datetime(2026, 1, 5 + weekday, tzinfo=BERLIN)  # 2026-01-05 is a Monday, no DST
    when = midnight + timedelta(minutes=open_minute + offset)
    assert is_open(s, when) is (0 <= offset < length)


# --- Daylight saving time -------------------------------------------------------------------


NY_WEEKDAYS = sched(*(block_from(d, "09:00", "17:00") for d in range(7)), tz=NY)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Winter (EST, UTC-5): 09:00-17:00 local is 14:00Z-22:00Z.
        (utc(2026, 3, 7, 13, 59), False),
        (utc(2026, 3, 7, 14, 0), True),
        (utc(2026, 3, 7, 21, 59), True),
        (utc(2026, 3, 7, 22, 0), False),
        # Spring forward 2026-03-08 02:00 -> 03:00: EDT (UTC-4), 13:00Z-21:00Z.
        (utc(2026, 3, 8, 12, 59), False),
        (utc(2026, 3, 8, 13, 0), True),
        (utc(2026, 3, 8, 14, 0), True),
        (utc(2026, 3, 8, 20, 59), True),
        (utc(2026, 3, 8, 21, 0), False),
        (utc(2026, 3, 8, 21, 30), False),
        # Summer.
        (utc(2026, 7, 1, 12, 59), False),
        (utc(2026, 7, 1, 13, 0), True),
        (utc(2026, 7, 1, 20, 59), True),
        (utc(2026, 7, 1, 21, 0), False),
        # Still EDT the day before fall back.
        (utc(2026, 10, 31, 13, 0), True),
        (utc(2026, 10, 31, 21, 0), False),
        # Fall back 2026-11-01 02:00 -> 01:00: EST again, 14:00Z-22:00Z.
        (utc(2026, 11, 1, 13, 0), False),
        (utc(2026, 11, 1, 13, 59), False),
        (utc(2026, 11, 1, 14, 0), True),
        (utc(2026, 11, 1, 21, 0), True),
        (utc(2026, 11, 1, 21, 59), True),
        (utc(2026, 11, 1, 22, 0), False),
    ],
)
def test_block_follows_local_wall_clock_across_dst(when: datetime, expected: bool) -> None:
    assert is_open(NY_WEEKDAYS, when) is expected


def test_block_in_the_spring_forward_gap() -> None:
    """On 2026-03-08 New York skips 02:00-02:59; a 01:30-02:30 block is open 01:30-01:59 EST
    (06:30Z-06:59Z) and closed from 03:00 EDT (07:00Z) on."""
    s = sched(block_from(SUN, "01:30", "02:30"), tz=NY)
    assert not is_open(s, utc(2026, 3, 8, 6, 29))
    assert is_open(s, utc(2026, 3, 8, 6, 30))
    assert is_open(s, utc(2026, 3, 8, 6, 59))
    assert not is_open(s, utc(2026, 3, 8, 7, 0))  # 03:00 EDT
    assert not is_open(s, utc(2026, 3, 8, 7, 30))
    # A week later the same block is a full hour again, now in EDT (UTC-4).
    assert not is_open(s, utc(2026, 3, 15, 5, 29))
    assert is_open(s, utc(2026, 3, 15, 5, 30))
    assert is_open(s, utc(2026, 3, 15, 6, 29))
    assert not is_open(s, utc(2026, 3, 15, 6, 30))


def test_block_entirely_inside_the_gap_never_opens_that_day() -> None:
    s = sched(block_from(SUN, "02:00", "02:45"), tz=NY)
    start = utc(2026, 3, 8, 4)
    assert not any(is_open(s, start + timedelta(minutes=m)) for m in range(0, 24 * 60))
    assert is_open(s, utc(2026, 3, 15, 6, 0))  # 02:00 EDT a week later


def test_block_in_the_repeated_fall_back_hour_is_open_twice() -> None:
    """On 2026-11-01 01:00-01:59 happens twice (EDT, then EST): a 01:00-02:00 block covers both."""
    s = sched(block_from(SUN, "01:00", "02:00"), tz=NY)
    assert not is_open(s, utc(2026, 11, 1, 4, 59))
    assert is_open(s, utc(2026, 11, 1, 5, 0))  # 01:00 EDT
    assert is_open(s, utc(2026, 11, 1, 5, 59))
    assert is_open(s, utc(2026, 11, 1, 6, 0))  # 01:00 EST
    assert is_open(s, utc(2026, 11, 1, 6, 59))
    assert not is_open(s, utc(2026, 11, 1, 7, 0))  # 02:00 EST


def test_overnight_block_across_spring_forward() -> None:
    # Saturday 22:00 to Sunday 04:00 New York time, over the night the clocks go forward.
    s = sched(block_from(SAT, "22:00", "04:00"), tz=NY)
    assert not is_open(s, utc(2026, 3, 8, 2, 59))  # Sat 21:59 EST
    assert is_open(s, utc(2026, 3, 8, 3, 0))  # Sat 22:00 EST
    assert is_open(s, utc(2026, 3, 8, 7, 59))  # Sun 03:59 EDT
    assert not is_open(s, utc(2026, 3, 8, 8, 0))  # Sun 04:00 EDT


# --- Parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("00:00", 0),
        ("00:01", 1),
        ("9:30", 570),
        ("09:30", 570),
        ("12:00", 720),
        ("23:59", 1439),
        ("24:00", 1440),
    ],
)
def test_parse_hhmm(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12",
        "1200",
        "12:",
        ":30",
        "12:5",
        "12:005",
        "12:60",
        "12:99",
        "24:01",
        "25:00",
        "99:00",
        "-1:00",
        "12:-5",
        "ab:cd",
        " 12:00",
        "12:00 ",
        "12:00:00",
        "12.30",
        "12h30",
    ],
)
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time"):
        parse_hhmm(text)


@given(st.integers(0, 1440))
@FAST
def test_format_then_parse_round_trips(minutes: int) -> None:
    assert parse_hhmm(format_hhmm(minutes)) == minutes


@pytest.mark.parametrize(
    ("weekday", "open_at", "close_at", "block"),
    [
        (0, "09:00", "17:00", HoursBlock(0, 540, 1020)),
        (6, "22:00", "06:00", HoursBlock(6, 1320, 360)),
        (3, "00:00", "24:00", HoursBlock(3, 0, 0)),
        (3, "18:30", "24:00", HoursBlock(3, 1110, 0)),
        (3, "00:00", "00:30", HoursBlock(3, 0, 30)),
    ],
)
def test_block_from(weekday: int, open_at: str, close_at: str, block: HoursBlock) -> None:
    assert block_from(weekday, open_at, close_at) == block


@pytest.mark.parametrize(
    ("weekday", "open_at", "close_at", "message"),
    [
        (-1, "09:00", "17:00", "weekday"),
        (7, "09:00", "17:00", "weekday"),
        (0, "24:00", "06:00", "24:00"),
        (0, "24:00", "24:00", "24:00"),
        (0, "9am", "17:00", "HH:MM"),
        (0, "09:00", "5pm", "HH:MM"),
        (0, "09:00", "24:30", "out of range"),
        (0, "09:75", "17:00", "out of range"),
    ],
)
def test_block_from_rejects(weekday: int, open_at: str, close_at: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        block_from(weekday, open_at, close_at)


# --- Period buckets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "tz", "buckets"),
    [
        (utc(2026, 11, 23, 14, 5), Z_UTC, ("2026112314", "20261123", "202611")),
        # New York (UTC-5 in winter): local midnight at 05:00Z.
        (utc(2026, 11, 24, 4, 59), NY, ("2026112323", "20261123", "202611")),
        (utc(2026, 11, 24, 5, 0), NY, ("2026112400", "20261124", "202611")),
        # Month and year boundaries follow the zone's wall clock, not UTC.
        (utc(2026, 12, 1, 4, 59), NY, ("2026113023", "20261130", "202611")),
        (utc(2026, 12, 1, 5, 0), NY, ("2026120100", "20261201", "202612")),
        (utc(2027, 1, 1, 4, 59), NY, ("2026123123", "20261231", "202612")),
        (utc(2027, 1, 1, 5, 0), NY, ("2027010100", "20270101", "202701")),
        # Summer: New York is UTC-4.
        (utc(2026, 8, 1, 3, 59), NY, ("2026073123", "20260731", "202607")),
        (utc(2026, 8, 1, 4, 0), NY, ("2026080100", "20260801", "202608")),
        # Berlin (UTC+1): the local month starts the evening before in UTC.
        (utc(2026, 11, 30, 22, 59), BERLIN, ("2026113023", "20261130", "202611")),
        (utc(2026, 11, 30, 23, 0), BERLIN, ("2026120100", "20261201", "202612")),
    ],
)
def test_period_buckets(now: datetime, tz: ZoneInfo, buckets: tuple[str, str, str]) -> None:
    assert period_buckets(now, Schedule(tz=tz)) == buckets


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2)))
@FAST
def test_period_buckets_nest(now: datetime) -> None:
    hour, day, month = period_buckets(now, Schedule(tz=NY))
    assert len(hour) == 10
    assert len(day) == 8
    assert len(month) == 6
    assert hour.startswith(day)
    assert day.startswith(month)
    local = now.astimezone(NY)
    assert hour == local.strftime("%Y%m%d%H")


def test_next_midnight_is_local() -> None:
    s = Schedule(tz=NY)
    nxt = next_midnight(utc(2026, 11, 24, 3, 0), s)  # 22:00 on the 23rd in New York
    assert nxt == datetime(2026, 11, 24, 0, 0, tzinfo=NY)
    assert nxt.astimezone(UTC) == utc(2026, 11, 24, 5, 0)
    # Across spring forward the local day is 23 hours long.
    nxt = next_midnight(utc(2026, 3, 8, 5, 0), s)  # 00:00 EST on the 8th
    assert nxt.astimezone(UTC) == utc(2026, 3, 9, 4, 0)
