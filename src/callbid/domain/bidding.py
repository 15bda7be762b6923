"""Live bids in the decision: which buyers to ask, and what their answers make of the order.

Pure. A ping whose campaign has passthrough buyers goes: plan (`decide.plan_ping`), probe the
hot state for capacity, ask the buyers that have some (`buyers_to_ping`), then `apply_bids`
turns their answers into the order actually sent: buyers that declined, failed or timed out
are dropped, the others priced from their bid (revshare), ordered by bid when the campaign
routes by bid, and given their dynamic number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

from callbid.domain.buyers import BuyerReply, NumberMode, Passthrough, ReplyOutcome
from callbid.domain.decide import PingPlan, payout_for
from callbid.domain.model import Campaign, ConversionCriterion, RoutingStrategy
from callbid.domain.reserve import Candidate

#: The decision log outcome of a buyer that did not accept.
PING_OUTCOMES = {
    ReplyOutcome.DECLINED: "ping_declined",
    ReplyOutcome.ERROR: "ping_error",
    ReplyOutcome.TIMEOUT: "ping_timeout",
    ReplyOutcome.SKIPPED: "ping_skipped",
}


def needs_buyers(campaign: Campaign, plan: PingPlan) -> bool:
    """Whether any candidate of the plan is decided by a live answer."""
    if plan.order is None or not plan.order.candidates:
        return False
    if campaign.passthrough is not None:
        return True
    bidders = campaign.bidders
    return bool(bidders) and any(c.target_id in bidders for c in plan.order.candidates)


def buyers_to_ping(
    campaign: Campaign, plan: PingPlan, blocked: Iterable[int]
) -> list[tuple[int | None, Passthrough]]:
    """(target id, passthrough) for each candidate with capacity that has its own API, in
    routing order, then (None, the campaign's) when a candidate without one remains."""
    assert plan.order is not None
    skip = set(blocked)
    asked: list[tuple[int | None, Passthrough]] = []
    gate_needed = False
    for candidate in plan.order.candidates:
        if candidate.target_id in skip:
            continue
        passthrough = _passthrough_of(campaign, candidate.target_id)
        if passthrough is not None:
            asked.append((candidate.target_id, passthrough))
        else:
            gate_needed = True
    if gate_needed and campaign.passthrough is not None:
        asked.append((None, campaign.passthrough))
    return asked


def apply_bids(
    campaign: Campaign,
    plan: PingPlan,
    blocked: Sequence[tuple[int, str]],
    replies: Sequence[BuyerReply],
) -> PingPlan:
    """The plan with the order the buyers' answers leave: candidates blocked at the probe or
    not accepting removed (their outcome kept for the log), the rest priced, ordered and
    numbered. The rate limit was taken by the probe, so the new order carries none."""
    order = plan.order
    assert order is not None
    criteria = _criteria(campaign, plan.matched_criteria)
    by_target = {r.target_id: r for r in replies}
    gate = by_target.get(None)
    removed = dict(blocked)
    kept: list[tuple[Candidate, float | None]] = []
    destinations: dict[int, str] = {}
    for candidate in order.candidates:
        target = campaign.target(candidate.target_id)
        if candidate.target_id in removed or target is None:
            continue
        own = target.passthrough is not None
        reply = by_target.get(target.id) if own else gate
        if reply is not None and reply.outcome is not ReplyOutcome.ACCEPTED:
            removed[target.id] = PING_OUTCOMES[reply.outcome]
            continue
        passthrough = target.passthrough if own else campaign.passthrough
        bid = reply.bid if reply is not None and reply.bid is not None else target.bid
        dial = passthrough is not None and passthrough.number_mode is NumberMode.DIAL
        number = reply.number if reply is not None else None
        if dial and number is not None:
            destinations[target.id] = number
        priced = _priced(candidate, criteria, bid, reply, None if dial else number)
        kept.append((priced, bid))
    if campaign.strategy is RoutingStrategy.BID:
        kept.sort(key=lambda pair: -pair[1] if pair[1] is not None else math.inf)
    final = replace(order, candidates=tuple(c for c, _ in kept), rate=None, probe=False)
    return replace(
        plan,
        order=final,
        replies=tuple(replies),
        skipped=tuple(removed.items()),
        destinations=destinations,
        by_bid=campaign.strategy is RoutingStrategy.BID,
    )


def _passthrough_of(campaign: Campaign, target_id: int) -> Passthrough | None:
    target = campaign.target(target_id)
    return target.passthrough if target is not None else None


def _criteria(campaign: Campaign, ids: tuple[int, ...]) -> list[ConversionCriterion]:
    wanted = set(ids)
    return [c for c in campaign.criteria if c.id in wanted]


def _priced(
    candidate: Candidate,
    criteria: list[ConversionCriterion],
    bid: float | None,
    reply: BuyerReply | None,
    inbound: str | None,
) -> Candidate:
    """The candidate paid from `bid`: the publisher's payout under each option (a revshare is
    a share of the bid), the buyer's bid as revenue, its seconds and number when it gave them."""
    payouts = tuple(payout_for(c, bid=bid) for c in criteria) or (0.0,)
    seconds = reply.seconds if reply is not None else None
    return replace(candidate, payouts=payouts, revenue=bid, seconds=seconds, inbound_number=inbound)
