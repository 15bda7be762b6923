"""Where a call goes: pure, from the campaign, the call's facts and the reservation it claimed.

A call that claimed a reservation goes to the reserved target first (to the number its buyer
gave, when it gave one); unless its key routes strictly to that target, the campaign's other
eligible targets follow in routing order, for when it does not answer. Any other call is routed
as a ping would be: every target judged by the same rules (paused, hours, tag filters, caller
lists), the eligible ones in priority-then-weight order, or by bid. Caps are the hot state's
business, checked leg by leg as each is dialled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from random import Random

from callbid.domain.calls import Leg
from callbid.domain.decide import Outcome, Verdict, evaluate_target, order_by_priority
from callbid.domain.model import Campaign, PingRequest, RoutingStrategy, Target


@dataclass(frozen=True, slots=True)
class CallPlan:
    """The legs to try in order, and each target's verdict for the call flow."""

    legs: tuple[Leg, ...]
    verdicts: tuple[Verdict, ...]


def plan_call(
    campaign: Campaign,
    request: PingRequest,
    *,
    now: datetime,
    rng: Random,
    reserved_target: int | None = None,
    reserved_destination: str | None = None,
    strict: bool = False,
) -> CallPlan:
    """The routing plan of a call (see the module docstring). A reserved target that left the
    campaign since is skipped; with `strict`, nothing else is tried."""
    legs: list[Leg] = []
    verdicts: list[Verdict] = []
    reserved = campaign.target(reserved_target) if reserved_target is not None else None
    if reserved is not None:
        destination = reserved_destination or reserved.destination
        legs.append(Leg(destination, reserved.ring_timeout, reserved.id))
        verdicts.append(Verdict(reserved.id, reserved.name, "reserved"))
    if strict and reserved_target is not None:
        return CallPlan(tuple(legs), tuple(verdicts))
    eligible: list[Target] = []
    for target in campaign.targets:
        if target.id == reserved_target:
            continue
        verdict = evaluate_target(target, request, now)
        verdicts.append(verdict)
        if verdict.outcome == Outcome.ELIGIBLE:
            eligible.append(target)
    legs.extend(
        Leg(t.destination, t.ring_timeout, t.id) for t in routing_order(campaign, eligible, rng)
    )
    return CallPlan(tuple(legs), tuple(verdicts))


def routing_order(campaign: Campaign, targets: list[Target], rng: Random) -> list[Target]:
    """Priority then weight; by static bid (highest first, unbid last) when the campaign
    routes by bid."""
    ordered = order_by_priority(targets, rng)
    if campaign.strategy is RoutingStrategy.BID:
        ordered.sort(key=lambda t: -(t.bid if t.bid is not None else float("-inf")))
    return ordered
