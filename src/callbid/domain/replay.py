"""Replaying a stored request on today's configuration: the pure parts (see `service.replay`).

Buyers are never pinged in a replay: a buyer that answered the original ping answers the same
again (its stored reply), and one that did not is taken out of the order with the outcome
`would_ping`. The original reservation is not a fresh ping's rival: its own shield entry and its
own sighting of the caller are left out of the replay's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from callbid.domain.bidding import PING_OUTCOMES
from callbid.domain.buyers import BuyerReply, ReplyOutcome
from callbid.domain.decide import LogRow
from callbid.domain.model import Campaign
from callbid.domain.reserve import ReserveOrder

#: The decision log outcome of a buyer that a live ping would ask and a replay does not.
WOULD_PING = "would_ping"
NOT_PINGED = "not pinged in a replay"
#: A sighting this close to the original's creation is the original's own.
SIGHTING_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One target's outcome in the original (`before`) and in the replay (`after`); None
    where the target was not in that decision (`target_id` None: the campaign passthrough)."""

    target_id: int | None
    target_name: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def replay_uuid(uuid: str) -> str:
    """The uuid a replay's order carries: never the original's, which a store may still hold
    (a retried order would answer with the stored record)."""
    return f"replay:{uuid}"


def replay_order(order: ReserveOrder, uuid: str, own_shield: str | None) -> ReserveOrder:
    """The order a replay previews: its own uuid, no rate limit (a replay is not traffic), and
    no shield when `own_shield` (the live original's) is the one it would meet."""
    shield = None if own_shield is not None and order.shield_key == own_shield else order.shield_key
    return replace(order, uuid=replay_uuid(uuid), rate=None, shield_key=shield)


def is_own_sighting(last_seen: float | None, created_at: float, reserved: bool) -> bool:
    """Whether the caller's last sighting is the one the original reservation recorded."""
    return reserved and last_seen is not None and abs(last_seen - created_at) < SIGHTING_TOLERANCE


def stored_replies(
    log: Sequence[Mapping[str, Any]], asked: Iterable[int | None]
) -> list[BuyerReply]:
    """The original ping's reply of each buyer in `asked` (target id, None: the campaign's
    passthrough), read from its stored decision log; a `skipped` reply marked NOT_PINGED for
    a buyer the original did not ask."""
    pings = {e.get("target_id"): e["ping"] for e in log if isinstance(e.get("ping"), Mapping)}
    return [_reply_of(target_id, pings.get(target_id)) for target_id in asked]


def _reply_of(target_id: int | None, ping: Mapping[str, Any] | None) -> BuyerReply:
    if ping is None:
        return BuyerReply(target_id, ReplyOutcome.SKIPPED, detail=NOT_PINGED)
    return BuyerReply(
        target_id,
        ReplyOutcome(ping["outcome"]),
        latency_ms=ping.get("latency_ms"),
        http_status=ping.get("http_status"),
        bid=ping.get("bid"),
        number=ping.get("number"),
        seconds=ping.get("seconds"),
        detail=ping.get("detail"),
        body=ping.get("body"),
    )


def mark_unpinged(
    log: tuple[LogRow, ...], campaign: Campaign, replies: Sequence[BuyerReply]
) -> tuple[LogRow, ...]:
    """The replay's log with every row refused for want of a NOT_PINGED buyer's answer (its
    own, or the campaign passthrough's for a target without one) as `would_ping`."""
    unpinged = {r.target_id for r in replies if r.detail == NOT_PINGED}
    if not unpinged:
        return log
    skipped = PING_OUTCOMES[ReplyOutcome.SKIPPED]  # also the campaign passthrough's own row
    return tuple(
        replace(row, outcome=WOULD_PING, ping=None)
        if row.outcome == skipped and _asked_for(campaign, row.target_id) in unpinged
        else row
        for row in log
    )


def _asked_for(campaign: Campaign, target_id: int | None) -> int | None:
    """Whose buyer answers for `target_id`: its own passthrough's, else the campaign's."""
    target = campaign.target(target_id) if target_id is not None else None
    return target_id if target is not None and target.passthrough is not None else None


def compare_logs(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> tuple[ReplayRow, ...]:
    """One row per target of either decision log: the replay's targets in its order, then
    the original's others, the campaign passthrough last."""
    old = {e.get("target_id"): e for e in before}
    new = {e.get("target_id"): e for e in after}
    ids = [i for i in new if i is not None] + [i for i in old if i is not None and i not in new]
    ids += [None] if None in old or None in new else []
    return tuple(_row(target_id, old.get(target_id), new.get(target_id)) for target_id in ids)


def _row(
    target_id: int | None, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> ReplayRow:
    named = new or old or {}
    return ReplayRow(
        target_id,
        str(named.get("target_name", "")),
        old.get("outcome") if old is not None else None,
        new.get("outcome") if new is not None else None,
    )


def named_inbound(inbound: str | None, pool_number: str | None, campaign: Campaign) -> str | None:
    """The inbound number to replay the request with: the original's shared tracking number
    when the campaign still has it (the ping named it, or it is the default a ping would get
    anyway); None for a pool number, which a replay takes afresh, or a buyer's number."""
    if inbound is None or pool_number is not None or inbound not in campaign.all_numbers:
        return None
    return inbound
