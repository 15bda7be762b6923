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


@dataclass(frozen=True, slots=True)
class Warning:
    """One thing to fix: what it is about (`publisher demo-pub`) and why it matters."""

    subject: str
    message: str


def opens_again_this_week(schedule: Schedule, now: datetime) -> bool:
    """Whether the schedule is open now or opens before its zone's Sunday midnight."""
    if not schedule.blocks or is_open(schedule, now):
        return True
    local = now.astimezone(schedule.tz)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), local.tzinfo)
    week_end = monday + timedelta(days=7)
    for block in schedule.blocks:
        start = monday + timedelta(days=block.weekday, minutes=block.open)
        if local < start < week_end:
            return True
    return False


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
    for target in campaign.targets:
        if not target.paused and not opens_again_this_week(target.schedule, now):
            yield Warning(
                f"target {target.name}", "it has no open hours left this week in its time zone"
            )


def _failing(campaign: Campaign, failing: Mapping[int | None, int]) -> Iterable[Warning]:
    for buyer, count in sorted(failing.items(), key=lambda item: item[0] or 0):
        target = campaign.by_id.get(buyer) if buyer is not None else None
        name = f"target {target.name}" if target else "the campaign's passthrough"
        yield Warning(name, f"its buyer API failed its last {count} pings (errors or timeouts)")
