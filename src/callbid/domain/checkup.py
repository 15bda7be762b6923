"""What in a campaign's configuration cannot work, said before a ping finds out: publishers
nobody pays, keys with no number to answer with, targets with no hours left this week, buyers
whose APIs keep failing. Pure: the loaded campaign, its keys, recent outcomes and `now`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from callbid.domain.hours import is_open
from callbid.domain.model import Campaign, RtbKey, Schedule

#: A buyer whose last this-many pings all failed or timed out is called failing.
FAILING_AFTER = 3
FAILED = frozenset({"error", "timeout"})
#: A target closed for the rest of its week is not warned of if it opens within this long.
SOON = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Warning:
    """One thing to fix: what it is about (`publisher demo-pub`) and why it matters."""

    subject: str
    message: str


def next_opening(schedule: Schedule, now: datetime) -> datetime | None:
    """When the schedule is next open (`now` when it is open now), on its zone's clock; None
    when it has no block at all that can open."""
    if not schedule.blocks or is_open(schedule, now):
        return now
    local = now.astimezone(schedule.tz)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), local.tzinfo)
    starts = [
        monday + timedelta(days=week * 7 + block.weekday, minutes=block.open)
        for week in (0, 1)
        for block in schedule.blocks
    ]
    later = [start for start in starts if start > local]
    return min(later) if later else None


def opens_again_this_week(schedule: Schedule, now: datetime) -> bool:
    """Whether the schedule is open now or opens before its zone's Sunday midnight."""
    opening = next_opening(schedule, now)
    if opening is None:
        return False
    local = now.astimezone(schedule.tz)
    week_end = datetime.combine(
        local.date() + timedelta(days=7 - local.weekday()), time(), local.tzinfo
    )
    return opening < week_end


def failing_buyers(recent_logs: Iterable[Sequence[Mapping[str, object]]]) -> dict[int | None, int]:
    """Buyers (target id, None for the campaign's passthrough) whose latest pings, newest
    first in `recent_logs`, all failed: how many in a row, for those at `FAILING_AFTER` or
    more."""
    streaks: dict[int | None, int] = {}
    settled: set[int | None] = set()
    for log in recent_logs:
        for row in log:
            ping = row.get("ping")
            if not isinstance(ping, Mapping):
                continue
            buyer = row.get("target_id")
            buyer = buyer if isinstance(buyer, int) else None
            if buyer in settled:
                continue
            if ping.get("outcome") in FAILED:
                streaks[buyer] = streaks.get(buyer, 0) + 1
            else:
                settled.add(buyer)
    return {buyer: n for buyer, n in streaks.items() if n >= FAILING_AFTER}


def campaign_warnings(
    campaign: Campaign,
    keys: Sequence[RtbKey],
    now: datetime,
    failing: Mapping[int | None, int],
) -> list[Warning]:
    """Every warning about `campaign`, publishers first, then keys, targets and buyers."""
    return [
        *_unpaid_publishers(campaign),
        *_keys_without_numbers(campaign, keys),
        *_targets_without_hours(campaign, now),
        *_failing(campaign, failing),
    ]


def _unpaid_publishers(campaign: Campaign) -> Iterable[Warning]:
    for publisher_id in sorted(campaign.publishers):
        paying = [
            c for c in campaign.criteria if c.publisher_id in (None, publisher_id) and c.payout > 0
        ]
        if not paying:
            yield Warning(
                f"publisher {publisher_id}",
                "no conversion criterion pays this publisher: its RTB pings return a payout of $0",
            )


def _keys_without_numbers(campaign: Campaign, keys: Sequence[RtbKey]) -> Iterable[Warning]:
    for key in keys:
        if key.inbound_number is not None and key.inbound_number not in campaign.numbers:
            yield Warning(
                f"RTB key {key.key}",
                f"its number {key.inbound_number} is not one of the campaign's tracking numbers",
            )
        elif key.inbound_number is None and not campaign.numbers and not campaign.pool_numbers:
            yield Warning(
                f"RTB key {key.key}",
                "the campaign has no tracking number and no pool: every ping is refused",
            )


def _targets_without_hours(campaign: Campaign, now: datetime) -> Iterable[Warning]:
    """Targets closed for the rest of their week, unless they open within a day anyway (a
    weekday target on a Sunday evening is not news)."""
    for target in campaign.targets:
        schedule = target.schedule
        if target.paused or opens_again_this_week(schedule, now):
            continue
        opening = next_opening(schedule, now)
        if opening is not None and opening - now <= SOON:
            continue
        when = f"; it opens next {opening:%A %H:%M} ({schedule.tz.key})" if opening else ""
        yield Warning(f"target {target.name}", f"it has no open hours left this week{when}")


def _failing(campaign: Campaign, failing: Mapping[int | None, int]) -> Iterable[Warning]:
    for buyer, count in sorted(failing.items(), key=lambda item: item[0] or 0):
        target = campaign.by_id.get(buyer) if buyer is not None else None
        name = f"target {target.name}" if target else "the campaign's passthrough"
        yield Warning(name, f"its buyer API failed its last {count} pings (errors or timeouts)")
