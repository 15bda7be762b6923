"""Business hours: is a schedule open at an instant, in its own time zone (DST included)."""

from __future__ import annotations

from datetime import datetime, timedelta

from callbid.domain.model import HoursBlock, Schedule

MINUTES_PER_DAY = 1440


def is_open(schedule: Schedule, now: datetime) -> bool:
    """True when `now` (timezone-aware) falls inside a block of `schedule`.

    Blocks are read on the local wall clock of the schedule's zone, so a 09:00-17:00 block stays
    09:00-17:00 across DST changes. An overnight block (close <= open) opened on day D covers
    D from `open` to midnight and D+1 from midnight to `close`.
    """
    if not schedule.blocks:
        return True
    local = now.astimezone(schedule.tz)
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    yesterday = (weekday - 1) % 7
    return any(_covers(b, weekday, yesterday, minute) for b in schedule.blocks)


def _covers(block: HoursBlock, weekday: int, yesterday: int, minute: int) -> bool:
    if block.open == block.close == 0:
        return block.weekday == weekday
    if block.open < block.close:
        return block.weekday == weekday and block.open <= minute < block.close
    # Overnight: the evening part today, the morning part of a block opened yesterday.
    if block.weekday == weekday and minute >= block.open:
        return True
    return block.weekday == yesterday and minute < block.close


def period_buckets(now: datetime, schedule: Schedule) -> tuple[str, str, str]:
    """Hour, day and month bucket names of `now` on the schedule zone's wall clock."""
    local = now.astimezone(schedule.tz)
    day = f"{local.year:04d}{local.month:02d}{local.day:02d}"
    return f"{day}{local.hour:02d}", day, day[:6]


def parse_hhmm(text: str) -> int:
    """Minutes after midnight of an `HH:MM` string (`24:00` allowed); ValueError otherwise."""
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ValueError(f"time must be HH:MM, got {text!r}")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > MINUTES_PER_DAY:
        raise ValueError(f"time out of range: {text!r}")
    return minutes


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def block_from(weekday: int, open_at: str, close_at: str) -> HoursBlock:
    """A block from wall-clock strings; `close_at` 24:00 is stored as midnight of the next day."""
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
    opening, closing = parse_hhmm(open_at), parse_hhmm(close_at)
    if opening == MINUTES_PER_DAY:
        raise ValueError("a block cannot open at 24:00")
    if opening == 0 and closing == MINUTES_PER_DAY:
        return HoursBlock(weekday, 0, 0)
    return HoursBlock(weekday, opening, closing % MINUTES_PER_DAY)


def next_midnight(now: datetime, schedule: Schedule) -> datetime:
    local = now.astimezone(schedule.tz)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
